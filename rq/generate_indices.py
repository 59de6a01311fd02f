"""Write the SID index of a trained RQ-VAE (Sinkhorn collision rounds, then unique SIDs).

    python rq/generate_indices.py --data_path EMB.npy --output_path X.index.json [--checkpoint best_collision]
"""

from minionerec.cli import run_method_stage
from minionerec.sid.build import SidConfig, generate_index

if __name__ == "__main__":
    run_method_stage(SidConfig, "rqvae", lambda cfg: generate_index(cfg, "rqvae"))
