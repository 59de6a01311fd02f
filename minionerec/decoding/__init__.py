"""Constrained SID decoding (transition skeleton: re-exports LogitProcessor.py until its code moves here)."""
from LogitProcessor import *  # noqa: F401,F403
