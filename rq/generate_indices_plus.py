"""Write the SID index of a trained RQ-Kmeans+ model (see rq/rqkmeans_plus.py).

    python rq/generate_indices_plus.py --data_path EMB.npy --output_path X.index.json
"""

from minionerec.cli import run_method_stage
from minionerec.sid.build import SidConfig, generate_index

if __name__ == "__main__":
    run_method_stage(SidConfig, "rqkmeans_plus", lambda cfg: generate_index(cfg, "rqkmeans_plus"))
