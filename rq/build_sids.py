"""Config-driven SIDs: run ``sid.method`` end to end (training + index for RQ-VAE/RQ-Kmeans+).

    bash rq/build_sids.sh configs/ml-100k.yaml [--sid.method rqvae ...]
"""

from minionerec.cli import run_stage
from minionerec.sid.build import SidConfig, build_sids

if __name__ == "__main__":
    run_stage(SidConfig, build_sids)
