"""rqkmeans_constrained: residual k-means SIDs.  See minionerec/sid/build.py for every option (codes are 0-based).

    python rq/rqkmeans_constrained.py --data_path EMB.npy --output_path X.index.json --num_levels 3 --codebook_size 256 --seed 42
    python rq/rqkmeans_constrained.py configs/ml-100k.yaml [--sid.key value ...]
"""

from minionerec.cli import run_method_stage
from minionerec.sid.build import SidConfig, run_kmeans_method

if __name__ == "__main__":
    run_method_stage(SidConfig, "rqkmeans_constrained", lambda cfg: run_kmeans_method(cfg, "rqkmeans_constrained"))
