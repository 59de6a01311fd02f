"""Train RQ-Kmeans+ (residual encoder z = x + g(x), codebooks warm-started from the constrained
RQ-Kmeans codebooks; upstream lr 1e-4).  First run, with the same output stem:

    python rq/rqkmeans_constrained.py --data_path EMB.npy --output_path X.constrained.index.json
    python rq/rqkmeans_plus.py --data_path EMB.npy --output_path X.index.json --lr 1e-4 [--codebook_path C.npz]
    python rq/generate_indices_plus.py --data_path EMB.npy --output_path X.index.json
"""

from minionerec.cli import run_method_stage
from minionerec.sid.build import SidConfig, train_rq_model

if __name__ == "__main__":
    run_method_stage(SidConfig, "rqkmeans_plus", lambda cfg: train_rq_model(cfg, "rqkmeans_plus"))
