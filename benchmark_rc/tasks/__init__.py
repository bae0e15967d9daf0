"""Tasks: the kinds of prediction problem (classification, stranded profiles, binned tracks), each one object
that owns its arrays, RC rules, losses, selection, evaluation and attribution target
(:mod:`benchmark_rc.tasks.base`). Add a task kind by writing one :class:`Task` subclass and
registering its instance here.
"""

from __future__ import annotations

from typing import Any

from benchmark_rc.errors import DatasetError
from benchmark_rc.tasks.base import RC_RULES, ArraySpec, Task, Validation
from benchmark_rc.tasks.classification import CLASSIFICATION, ClassificationTask
from benchmark_rc.tasks.profile import PROFILE, ProfileTask
from benchmark_rc.tasks.tracks import TRACKS, TracksTask

TASKS: dict[str, Task] = {t.name: t for t in (CLASSIFICATION, PROFILE, TRACKS)}


def get_task(name: Any, where: str = "task") -> Task:
    """The registered :class:`Task` named ``name``; ``where`` names it in the error message
    (e.g. ``"data.h5: attribute task"``)."""
    if isinstance(name, Task):
        return name
    try:
        return TASKS[name]
    except (KeyError, TypeError):
        raise DatasetError(f"{where} is {name!r}, expected one of {list(TASKS)}") from None


def task_of_arrays(names: Any, where: str) -> Task:
    """The task whose stored arrays are all among ``names`` (arrays given in memory)."""
    for task in TASKS.values():
        if set(task.arrays) <= set(names):
            return task
    needs = "; ".join(f"{', '.join(t.arrays)} ({t.name})" for t in TASKS.values())
    raise DatasetError(f"{where}: needs {needs}, has {sorted(names)}")


__all__ = ["CLASSIFICATION", "PROFILE", "RC_RULES", "TASKS", "TRACKS", "ArraySpec",
           "ClassificationTask", "ProfileTask", "Task", "TracksTask", "Validation", "get_task",
           "task_of_arrays"]
