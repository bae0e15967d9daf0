"""The training protocol of the paper (spec/paper.md §2.3, §3.5, §4.3), checkpoints and evaluation.

One loop (:func:`fit_model`) serves every task; a :class:`Protocol` says how:

=========  ======  =======================  =================  ===================  ============
protocol   batch   epochs                   early stopping     weights kept         data
=========  ======  =======================  =================  ===================  ============
sim        500     ≤ 200 passes             val_loss, pat. 10  best val auROC       RCAug: the
                                                                                    doubled set
                                                                                    [x, RC x],
                                                                                    shuffled
binary     100     160 × 50-step epochs     none               best val auROC       upsampled
                                                                                    stream (0.2),
                                                                                    RCAug within
profile    64      ≤ 200 passes             val_loss (= the    best val_loss        jitter 200,
                                            profile MNLL),                          RCAug within
                                            pat. 10
=========  ======  =======================  =================  ===================  ============

Modules, in the order a run uses them:

* :mod:`~benchmark_rc.training.protocol`: :class:`Protocol`, :data:`PROTOCOLS`,
  :class:`TrainConfig` (a run's parameters and protocol overrides), :func:`set_determinism`;
* :mod:`~benchmark_rc.training.data`: the training stream and validation data of a run
  (:func:`make_training_data`), the dataset facts it records;
* :mod:`~benchmark_rc.training.selection`: the loop, :func:`fit_model` with
  :class:`ProtocolCallback` (per-epoch validation, selection of the kept weights, early
  stopping);
* :mod:`~benchmark_rc.training.checkpoint`: :class:`TrainState` and the :class:`Checkpoint`
  files that let an interrupted run resume to the same weights;
* :mod:`~benchmark_rc.training.files`: the files of a finished run, :func:`versions`;
* :mod:`~benchmark_rc.training.run`: :func:`train_run`, one run from dataset to run directory;
* :mod:`~benchmark_rc.training.evaluation`: :func:`evaluate_model`, by the dataset's task.

Every name other modules use is importable from this package.
"""

from __future__ import annotations

from benchmark_rc.training.checkpoint import CHECKPOINT_DIR, Checkpoint, TrainState
from benchmark_rc.training.data import dataset_info, make_training_data, model_hparams
from benchmark_rc.training.evaluation import evaluate_model
from benchmark_rc.training.files import (
    CONFIG_FILE,
    RUN_PACKAGES,
    read_run_config,
    save_model_atomic,
    save_model_files,
    versions,
    write_history,
)
from benchmark_rc.training.protocol import PROTOCOLS, Protocol, TrainConfig, set_determinism
from benchmark_rc.training.run import _check_resumable as _check_resumable
from benchmark_rc.training.run import distribution_scope, train_run
from benchmark_rc.training.selection import FitResult, ProtocolCallback, fit_model

_dataset_info = dataset_info  # the name bench/ scripts of older checkouts import

__all__ = ["CHECKPOINT_DIR", "CONFIG_FILE", "PROTOCOLS", "RUN_PACKAGES", "Checkpoint",
           "FitResult", "Protocol", "ProtocolCallback", "TrainConfig", "TrainState",
           "dataset_info", "distribution_scope", "evaluate_model", "fit_model",
           "make_training_data", "model_hparams", "read_run_config", "save_model_atomic",
           "save_model_files", "set_determinism", "train_run", "versions", "write_history"]
