"""Former home of the data protocol, kept so ``from minionerec.preprocess import X`` keeps working:
the code lives in :mod:`minionerec.data` (protocol, build, writers, one reader per source)."""

from minionerec.data import *  # noqa: F401,F403  (the whole public API of the data stage)
from minionerec.data import __all__  # noqa: F401
