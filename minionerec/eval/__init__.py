"""Evaluation stage (transition skeleton: re-exports evaluate.py until its code moves here)."""
from evaluate import *  # noqa: F401,F403
