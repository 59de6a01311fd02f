"""GRPO: config, trainer, rewards (transition skeleton: re-exports the root modules until their code moves here)."""
from minionerec_trainer import *  # noqa: F401,F403
from rewards import *  # noqa: F401,F403
from rl import *  # noqa: F401,F403
