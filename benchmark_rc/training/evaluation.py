"""Evaluation of a trained (or conjoined) model on one split, by the dataset's task."""

from __future__ import annotations

import os
from typing import Any

from benchmark_rc.tasks import get_task


def evaluate_model(model: Any, data: str | os.PathLike, split: str = "test", *,
                   batch_size: int | None = None, max_rows: int | None = None) -> dict[str, Any]:
    """Test metrics and RC divergence of a (trained or conjoined) model on one split of a
    dataset, by the dataset's task (:meth:`benchmark_rc.tasks.Task.evaluate`): classification
    ``auroc``, ``auprc``; profile ``jsd``, ``pearson``, ``spearman``; both ``rc_divergence``
    (0 up to round-off for an RC-equivariant model) and ``n`` (rows evaluated)."""
    from benchmark_rc.data.hdf5 import read_attrs

    task = get_task(read_attrs(data).get("task"), f"{data}: attribute task")
    return task.evaluate(model, data, split, batch_size=batch_size, max_rows=max_rows)
