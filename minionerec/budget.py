"""Training budgets: steps and epochs decide how long a model trains, so the same config gives the
same model on any machine.  A wall-clock cap (``sft.max_train_minutes``, ``baselines.max_train_seconds``)
is only a user's safety valve; when it fires the stage records it (:func:`wall_clock_cap`) and the
report marks the row as not comparable (:func:`cap_note`)."""

from __future__ import annotations

from typing import Any

#: The key under which a stage summary records a wall-clock cap that fired.
WALL_CLOCK_CAP = "wall_clock_cap"


def wall_clock_cap(setting: str, epochs_done: float, epochs_planned: float, **extra: Any) -> dict[str, Any]:
    """The summary record of a cap that stopped training early, e.g. ``setting="max_train_minutes=7"``."""
    return {"setting": setting, "epochs_done": round(float(epochs_done), 3),
            "epochs_planned": round(float(epochs_planned), 3), **extra}


def cap_note(summary: dict[str, Any] | None) -> str | None:
    """``"stopped by max_train_minutes=7 at 0.42 of 2 epochs: not comparable"``, or None when no cap fired."""
    cap = (summary or {}).get(WALL_CLOCK_CAP)
    if not cap:
        return None
    return (f"stopped by {cap['setting']} at {cap['epochs_done']:g} of {cap['epochs_planned']:g} epochs: "
            "not comparable")
