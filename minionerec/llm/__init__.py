"""Prompts, tasks, model building and SFT (transition skeleton: re-exports data.py and sft.py until their code moves here)."""
from data import *  # noqa: F401,F403
from minionerec.modeling import *  # noqa: F401,F403
from sft import *  # noqa: F401,F403
