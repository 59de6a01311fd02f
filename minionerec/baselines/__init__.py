"""Popularity, Markov, SASRec, GRU4Rec (transition skeleton: re-exports the root modules until their code moves here)."""
from sasrec import *  # noqa: F401,F403
from baselines import *  # noqa: F401,F403
