"""Train an RQ-VAE (checkpoints best_collision.pt / best_loss.pt / last.pt; resumable).
Then run rq/generate_indices.py with the same arguments to write the SID index.

    python rq/rqvae.py --data_path EMB.npy --output_path X.index.json --num_levels 3 --codebook_size 256 --seed 42
"""

from minionerec.cli import run_method_stage
from minionerec.sid.build import SidConfig, train_rq_model

if __name__ == "__main__":
    run_method_stage(SidConfig, "rqvae", lambda cfg: train_rq_model(cfg, "rqvae"))
