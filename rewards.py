"""RL rewards: one score per rollout, computed from the rollout's OWN row.

The code lives in :mod:`minionerec.rl.rewards` (the signature of a reward, the six rewards and how
to add one are documented there); this module keeps the name users import from::

    from rewards import build_reward_set, ranking_reward
"""

from minionerec.rl.rewards import *  # the public API: minionerec.rl.rewards.__all__
from minionerec.rl.rewards import __all__  # noqa: F401
