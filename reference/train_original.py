"""Train one of the paper's sim models with the original code's protocol, under the original stack.

Run with the Python 3.7 interpreter of ``make reference-venv`` (TensorFlow 1.15, Keras 2.2.4,
keras-genomics 0.1.2.1, h5py 2.10, scikit-learn 1.0.2), on a benchmark_rc HDF5 dataset written
by ``benchmark-rc simulate paper`` (its training labels already carry the 20% label noise)::

    .venv-legacy/bin/python reference/train_original.py --data sim200.h5 --model rcps \
        --seed 1535 --out OUT/original/rcps-s1535

The models are reference/legacy_models.py's ``sim_standard``, ``sim_rcps`` and ``sim_siamese``
at the paper's sizes (20 filters, kernel 21, pool 20, stride 20; spec/paper.md §2.2), which
follow the original SimArchs.py layer for layer. The protocol is the original RunSimArchs.py
``train_model`` + ``save_all``:

* ``np.random.seed(seed)`` and ``tf.set_random_seed(seed)``, then the model is built (Keras
  default initialisers, Adam(lr=0.001) with Keras 2's other defaults: beta_1 0.9, beta_2 0.999,
  epsilon 1e-7, no decay, no amsgrad);
* ``model.fit(x_train, y_train, validation_data=(x_valid, y_valid), batch_size=500,
  epochs=200)`` with Keras 2's default per-epoch shuffle (numpy's global generator);
* callbacks ``EarlyStopping(monitor='val_loss', patience=10, restore_best_weights=True)`` and the
  original ``AuRocCallback``, which predicts the validation set after every epoch and keeps the
  weights of the strictly best macro auROC (sklearn ``roc_auc_score`` on the (N, 3) labels);
* the kept weights are the best-auROC ones (``model.set_weights(callback.best_weights)``), and
  the test auROC / auPRC are sklearn's ``roc_auc_score`` / ``average_precision_score`` (macro
  over the 3 tasks) of the test predictions.

One deviation in bookkeeping, none in training: the original AuRocCallback came after
EarlyStopping, so in the epoch where training stopped it scored the weights EarlyStopping had
just restored (those of the best val_loss, whose auROC it had already seen, so the kept weights
are the same). Here the auROC callback runs first and so records the auROC of the epoch's own
weights, which is what the curves should show.

Single-threaded (one intra-op and one inter-op thread) in a fresh session, with
PYTHONHASHSEED=0, as reference/make_fixtures.py runs. TensorFlow 1.15's CPU kernels are still not
bitwise reproducible from run to run, so reruns agree closely, not exactly.

Writes into ``--out``: ``history.csv`` (epoch from 0, loss, acc, val_loss, val_acc, val_auroc,
val_auprc, seconds), ``result.json`` (the settings, epochs run, best epoch, test auROC / auPRC,
versions; written last, so its presence marks a finished run), ``test_pred.npy`` (the kept
weights' test sigmoid outputs, float32 (N, 3)) and ``model.h5`` (the kept weights, Keras 2).
"""

import argparse
import json
import os
import platform
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import legacy_startup

legacy_startup.start()

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.ERROR)

import keras  # noqa: E402
import keras_genomics  # noqa: E402, F401 - fails early if the package is missing
import legacy_models as lm  # noqa: E402
import sklearn  # noqa: E402
from sklearn.metrics import average_precision_score, roc_auc_score  # noqa: E402

# the original SimArchs.py classes -> reference/legacy_models.py builders, and our strategy name
MODELS = {"standard": (lm.sim_standard, "standard"),
          "rcps": (lm.sim_rcps, "rcps"),
          "siamese": (lm.sim_siamese, "conjoined")}
# the paper's sim hyper-parameters (spec/paper.md §2.2) and protocol (§2.3, RunSimArchs.py)
ARCH = {"filters": 20, "kernel": 21, "pool": 20, "stride": 20, "tasks": 3}
BATCH_SIZE = 500
EPOCHS = 200
PATIENCE = 10


def load_split(path, split):
    with h5py.File(path, "r") as f:
        return f[split]["x"][()].astype(np.float32), f[split]["y"][()].astype(np.float32)


class AuRocCallback(keras.callbacks.Callback):
    """The original AuRocCallback (best strictly-greater validation auROC keeps its weights),
    which also records each epoch's validation auROC / auPRC and its seconds."""

    def __init__(self, valid_x, valid_y):
        super().__init__()
        self.valid_x = valid_x
        self.valid_y = valid_y
        self.best_auroc_sofar = 0.0
        self.best_weights = None
        self.best_epoch_number = 0
        self.rows = {}
        self.t0 = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.time()

    def on_epoch_end(self, epoch, logs=None):
        preds = self.model.predict(self.valid_x)
        auroc = roc_auc_score(y_true=self.valid_y, y_score=preds)
        if auroc > self.best_auroc_sofar:
            self.best_weights = self.model.get_weights()
            self.best_epoch_number = epoch
            self.best_auroc_sofar = auroc
        self.rows[epoch] = {"val_auroc": float(auroc),
                            "val_auprc": float(average_precision_score(self.valid_y, preds)),
                            "seconds": time.time() - self.t0}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="benchmark_rc sim HDF5 (simulate paper)")
    parser.add_argument("--model", required=True, choices=sorted(MODELS))
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", required=True, help="run directory")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="(default: the paper's 200)")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)

    x_train, y_train = load_split(args.data, "train")
    x_valid, y_valid = load_split(args.data, "valid")
    x_test, y_test = load_split(args.data, "test")
    length = x_train.shape[1]

    builder, strategy = MODELS[args.model]
    lm.fresh_session()  # one intra-op and one inter-op thread
    random.seed(args.seed)
    np.random.seed(args.seed)  # noqa: NPY002 - the global state Keras 2's fit shuffles with
    tf.set_random_seed(args.seed)
    model = builder(length=length, **ARCH)

    auroc_cb = AuRocCallback(x_valid, y_valid)
    early = keras.callbacks.EarlyStopping(monitor="val_loss", patience=PATIENCE,
                                          restore_best_weights=True)
    t0 = time.time()
    fit = model.fit(x=x_train, y=y_train, validation_data=(x_valid, y_valid),
                    callbacks=[auroc_cb, early], batch_size=BATCH_SIZE, epochs=args.epochs,
                    verbose=0)
    train_seconds = time.time() - t0

    history = []
    for epoch in sorted(auroc_cb.rows):
        row = {"epoch": epoch}
        row.update({k: float(v[epoch]) for k, v in fit.history.items()})
        row.update(auroc_cb.rows[epoch])
        history.append(row)
    keys = list(history[0])
    with open(os.path.join(args.out, "history.csv"), "w") as f:
        f.write(",".join(keys) + "\n")
        for row in history:
            f.write(",".join(repr(row[k]) if k != "epoch" else str(row[k]) for k in keys) + "\n")

    model.set_weights(auroc_cb.best_weights)
    pred = model.predict(x_test).astype(np.float32)
    np.save(os.path.join(args.out, "test_pred.npy"), pred)
    model.save(os.path.join(args.out, "model.h5"))
    result = {
        "side": "original", "model": args.model, "strategy": strategy, "seed": args.seed,
        "data": os.path.basename(args.data), "arch": ARCH, "length": length,
        "batch_size": BATCH_SIZE, "max_epochs": args.epochs, "patience": PATIENCE,
        "optimizer": {"name": "Adam", **{k: float(v) if not isinstance(v, bool) else v
                                         for k, v in model.optimizer.get_config().items()}},
        "epochs": len(history), "best_epoch": int(auroc_cb.best_epoch_number),
        "stopped_early": int(early.stopped_epoch) > 0,
        "best_val_auroc": float(auroc_cb.best_auroc_sofar),
        "test_auroc": float(roc_auc_score(y_test, pred)),
        "test_auprc": float(average_precision_score(y_test, pred)),
        "train_seconds": train_seconds,
        "versions": {"python": platform.python_version(), "tensorflow": tf.__version__,
                     "keras": keras.__version__, "keras_genomics": _version("keras-genomics"),
                     "h5py": h5py.__version__, "numpy": np.__version__,
                     "scikit-learn": sklearn.__version__},
        "threads": {"intra_op": 1, "inter_op": 1},
    }
    tmp = os.path.join(args.out, ".result.json.partial")
    with open(tmp, "w") as f:
        json.dump(result, f, indent=1)
    os.replace(tmp, os.path.join(args.out, "result.json"))
    print(json.dumps({k: result[k] for k in ("model", "seed", "epochs", "best_epoch",
                                             "test_auroc", "test_auprc")}))


def _version(dist):
    import pkg_resources

    return pkg_resources.get_distribution(dist).version


if __name__ == "__main__":
    main()
