"""SASRec and GRU4Rec (sequential recommenders over item ids) and the ``sasrec`` CF reward model.

A facade: the code lives in :mod:`minionerec.baselines` (models in ``sequential.py``, training
in ``train.py``, saved files in ``model_files.py``, the reward model in ``cf_scorer.py``) and
the catalogue type in :mod:`minionerec.catalogue`.  RL loads a model trained by baselines.py::

    from sasrec import CFScorer
    scorer = CFScorer.load("runs/x/baselines/sasrec", "runs/x/llm/info/X.txt")
    rewards = scorer.score(histories=[[3, 17, 5]], candidates=[[8, 2, -1]], kind="logit")
"""

from minionerec.baselines import (
    MODEL_META,
    MODEL_TYPES,
    MODEL_WEIGHTS,
    PAD,
    TRAIN_STATE,
    CFScorer,
    GRU4Rec,
    ModelConfig,
    SASRec,
    SequenceBatch,
    SequentialRecommender,
    TrainConfig,
    TrainResult,
    build_model,
    dro_loss,
    load_model,
    pad_histories,
    position_targets,
    propensity,
    save_model,
    sequence_loss,
    split_rows_to_batch,
    stop_reason,
    target_ranks,
    top_items,
    train_one_epoch,
    train_sequential_model,
)
from minionerec.catalogue import Catalogue
from minionerec.device import resolve_device

__all__ = [
    "MODEL_META", "MODEL_TYPES", "MODEL_WEIGHTS", "PAD", "TRAIN_STATE", "CFScorer", "Catalogue", "GRU4Rec",
    "ModelConfig", "SASRec", "SequenceBatch", "SequentialRecommender", "TrainConfig", "TrainResult", "build_model",
    "dro_loss", "load_model", "pad_histories", "position_targets", "propensity", "resolve_device", "save_model",
    "sequence_loss", "split_rows_to_batch", "stop_reason", "target_ranks", "top_items", "train_one_epoch",
    "train_sequential_model",
]
