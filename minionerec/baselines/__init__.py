"""Recommendation baselines on the LLM-stage splits: popularity, Markov, SASRec, GRU4Rec, and the CF reward model.

- :mod:`.stage`: ``BaselinesConfig`` and :func:`run_baselines` (what ``baselines.py`` runs);
- :mod:`.popularity`, :mod:`.markov`: the count-based models;
- :mod:`.tensors`, :mod:`.sequential`, :mod:`.train`, :mod:`.model_files`: SASRec / GRU4Rec,
  their training (selection on valid, resumable) and their files;
- :mod:`.cf_scorer`: :class:`CFScorer`, the ``sasrec`` reward model of RL.
"""

from minionerec.baselines.cf_scorer import CFScorer
from minionerec.baselines.markov import TRANSITION_SOURCES, Markov, MarkovSettings
from minionerec.baselines.model_files import MODEL_META, MODEL_WEIGHTS, load_model, save_model
from minionerec.baselines.popularity import Popularity, target_rank_with_prior, top_k_with_prior
from minionerec.baselines.sequential import (
    MODEL_TYPES,
    GRU4Rec,
    ModelConfig,
    SASRec,
    SequentialRecommender,
    build_model,
    target_ranks,
    top_items,
)
from minionerec.baselines.stage import (
    MODELS,
    BaselinesConfig,
    Splits,
    check_items,
    load_splits,
    ranked_evaluation,
    run_baselines,
)
from minionerec.baselines.tensors import PAD, SequenceBatch, pad_histories, split_rows_to_batch
from minionerec.baselines.train import (
    TRAIN_STATE,
    TrainConfig,
    TrainResult,
    dro_loss,
    position_targets,
    propensity,
    sequence_loss,
    stop_reason,
    train_one_epoch,
    train_sequential_model,
)

__all__ = [
    "MODELS", "MODEL_META", "MODEL_TYPES", "MODEL_WEIGHTS", "PAD", "TRAIN_STATE", "TRANSITION_SOURCES",
    "BaselinesConfig", "CFScorer", "GRU4Rec", "Markov", "MarkovSettings", "ModelConfig", "Popularity",
    "SASRec", "SequenceBatch", "SequentialRecommender", "Splits", "TrainConfig", "TrainResult",
    "build_model", "check_items", "dro_loss", "load_model", "load_splits", "pad_histories", "position_targets",
    "propensity", "ranked_evaluation", "run_baselines", "save_model", "sequence_loss",
    "split_rows_to_batch", "stop_reason", "target_rank_with_prior", "target_ranks", "top_items",
    "top_k_with_prior", "train_one_epoch", "train_sequential_model",
]
