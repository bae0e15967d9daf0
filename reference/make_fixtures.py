"""Train the paper's models briefly under the original stack and write the legacy-import fixtures.

Run by ``make reference-fixtures`` with the Python 3.7 interpreter of ``make reference-venv``
(TensorFlow 1.15, Keras 2.2.4, keras-genomics 0.1.2.1, deeplift 0.6.13)::

    .venv-legacy/bin/python reference/make_fixtures.py --benchmark-rc .venv/bin/benchmark-rc \
        --data build/legacy-data --out tests/fixtures/legacy

It first writes three small simulated datasets into ``--data`` with the main venv's
``benchmark-rc simulate`` (:data:`DATASETS`, fixed seeds), then trains on them.

For every model of :data:`MODELS` it writes ``<name>.h5`` (``model.save``: Keras 2 HDF5 with the
optimizer state, as users of the original benchmark have them) and ``<name>.npz``: the fixed test
inputs (``x``; bpnet also ``control``, ``control_logcount``), the original stack's predictions
(``pred`` for sim / binary = sigmoid outputs, ``logits`` = the final sigmoid's input; bpnet
``profile`` logits and ``counts``) and, for the models deeplift's Keras converter accepts, its
scores on GIVEN references (``refs`` (N, R, L, 4), dinucleotide shuffles saved with the scores),
averaged over the R references as DeepSHAP does:

* ``dl_<rules>`` (T, N, L, 4): contributions m_c * (x_c - ref_c) per base and channel;
* ``dl_rescale_hyp`` (T, N, L, 4): hypothetical contributions m_b - sum_c m_c ref_c;
* ``dl_rescale_zero`` (T, N, L, 4): rescale contributions against the all-zero reference (a
  reference whose max-pool inputs are constant along length, where deeplift's max-pool rule
  and DeepSHAP's route alike in every window in which x's maximum is not below the reference's);

with rules ``rescale`` (NonlinearMxtsMode.Rescale on every non-linearity, DenseMxtsMode.Linear,
ConvMxtsMode.Linear) or ``genomics`` (NonlinearMxtsMode.DeepLIFT_GenomicsDefault: rescale after
convolutions, reveal-cancel after dense layers), for each task T of the Dense layer before the
sigmoid (target_layer_idx=-2; deeplift refuses an activation layer as target). deeplift 0.6.13
has one max-pool rule, MaxPoolDeepLiftMode.gradient (the multiplier at x's argmax of each
window). ``manifest.json`` records versions, the data commands and parameters, per-model facts
(layers, training history, the RC batch norms' moving statistics after training, sizes and
SHA-256 of the files) and what the converter refused.

Reruns write the same data and start from the same initial weights, but TensorFlow 1.15's CPU
kernels are not bitwise reproducible from run to run (two full runs differed by up to 5e-3 in
trained weights), so a regenerated set replaces the committed one as a whole; the tests read
every expected value from the same files.
"""

import argparse
import hashlib
import json
import os
import platform
import random
import subprocess
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import legacy_startup

legacy_startup.start()

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.ERROR)

import deeplift  # noqa: E402
import keras  # noqa: E402
import keras_genomics  # noqa: E402
import legacy_models as lm  # noqa: E402
from deeplift.conversion import kerasapi_conversion  # noqa: E402
from deeplift.dinuc_shuffle import dinuc_shuffle  # noqa: E402
from deeplift.layers import NonlinearMxtsMode  # noqa: E402
from deeplift.layers.core import ConvMxtsMode, DenseMxtsMode  # noqa: E402

REGENERATE = "make reference-fixtures"
# dataset -> `benchmark-rc` arguments (run from the main venv; --out is added)
DATASETS = {
    "sim200": ["simulate", "paper", "--length", "200", "--num-seqs", "200", "--seed", "7"],
    "sim1000": ["simulate", "paper", "--length", "1000", "--num-seqs", "100", "--seed", "7"],
    "profile": ["simulate", "profile", "--num-seqs", "200", "--seed", "7",
                "--jitter-margin", "0"],
}

# name -> (builder, dataset, task, epochs, batch size, fixed inputs kept, seed)
MODELS = [
    ("sim_standard", lm.sim_standard, "sim200", "sim", 2, 50, 8, 1535),
    ("sim_rcps", lm.sim_rcps, "sim200", "sim", 2, 50, 8, 1535),
    ("sim_siamese", lm.sim_siamese, "sim200", "sim", 2, 50, 8, 1535),
    ("sim_rcps_dense_after", lm.sim_rcps_dense_after, "sim200", "sim", 2, 50, 8, 1780),
    ("sim_dense_relu", lm.sim_dense_relu, "sim200", "sim", 2, 50, 8, 1780),
    ("binary_standard", lm.binary_standard, "sim1000", "binary", 2, 40, 4, 2143),
    ("binary_rcps", lm.binary_rcps, "sim1000", "binary", 2, 40, 4, 2143),
    ("binary_rcps_weighted", lm.binary_rcps_weighted, "sim1000", "binary", 2, 40, 4, 3578),
    ("bpnet_standard", lm.bpnet_standard, "profile", "bpnet", 1, 20, 2, 4652),
    ("bpnet_rcps", lm.bpnet_rcps, "profile", "bpnet", 1, 20, 2, 4652),
]
N_REFERENCES = 4
REFERENCE_SEED = 1234


def seed_everything(seed):
    """The paper's per-run seeding (np + tf graph seed) plus Python's, in a fresh session."""
    lm.fresh_session()
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - the global state Keras 2's fit shuffles with
    tf.set_random_seed(seed)


def load_split(path, split):
    with h5py.File(path, "r") as f:
        return {key: f[split][key][()] for key in f[split] if isinstance(f[split][key],
                                                                         h5py.Dataset)}


def data_params(path):
    with h5py.File(path, "r") as f:
        params = f.attrs["params"]
        return json.loads(params.decode() if hasattr(params, "decode") else params)


def training_arrays(arrays, task):
    """(inputs, targets) as the Keras 2 model takes them."""
    x = arrays["x"].astype(np.float32)
    if task == "sim":
        return x, arrays["y"]
    if task == "binary":  # one task: "motif 0 (ELF1) present"
        return x, arrays["y"][:, :1]
    profile = arrays["profile"]
    counts = np.log1p(profile.sum(axis=1))
    return ([x, arrays["control_logcount"], arrays["control"]], [counts, profile])


def fixed_inputs(arrays, task, n):
    """The first n test rows: what the fixture stores and the original stack predicts on."""
    kept = {"x": arrays["x"][:n].astype(np.uint8)}
    if task == "bpnet":
        kept["control"] = arrays["control"][:n].astype(np.float32)
        kept["control_logcount"] = arrays["control_logcount"][:n].astype(np.float32)
    return kept


def predict(model, kept, task):
    x = kept["x"].astype(np.float32)
    if task == "bpnet":
        counts, profile = model.predict([x, kept["control_logcount"], kept["control"]])
        return {"counts": counts, "profile": profile}
    return {"pred": model.predict(x), "logits": lm.pre_sigmoid_model(model).predict(x)}


def layer_summary(model):
    """[class name, layer name] of every layer, nested models entered."""
    out = []
    for layer in model.layers:
        out.append([type(layer).__name__, layer.name])
        if isinstance(layer, keras.models.Model):
            out.extend([type(sub).__name__, layer.name + "/" + sub.name] for sub in layer.layers)
    return out


def rc_batchnorm_statistics(model):
    """Whether each RevCompConv1DBatchNorm still has its initial moving statistics (0 and 1):
    Keras 2.2.4 drops the layer's updates (spec/paper.md §6.2); recorded, not assumed."""
    found = {}
    for layer in model.layers:
        if isinstance(layer, keras_genomics.layers.RevCompConv1DBatchNorm):
            mean = keras.backend.get_value(layer.moving_mean)
            var = keras.backend.get_value(layer.moving_variance)
            found[layer.name] = {"moving_mean_all_zero": bool(np.all(mean == 0)),
                                 "moving_variance_all_one": bool(np.all(var == 1))}
    return found


def train(name, builder, data_path, task, epochs, batch_size, n_keep, seed, out_dir):
    seed_everything(seed)
    model = builder()
    train_x, train_y = training_arrays(load_split(data_path, "train"), task)
    valid_x, valid_y = training_arrays(load_split(data_path, "valid"), task)
    history = model.fit(train_x, train_y, batch_size=batch_size, epochs=epochs,
                        validation_data=(valid_x, valid_y), shuffle=True, verbose=0)
    path = os.path.join(out_dir, name + ".h5")
    model.save(path)
    kept = fixed_inputs(load_split(data_path, "test"), task, n_keep)
    arrays = dict(kept)
    arrays.update(predict(model, kept, task))
    entry = {
        "file": name + ".h5",
        "arrays": name + ".npz",
        "task": task,
        "data": os.path.basename(data_path),
        "seed": seed,
        "epochs": epochs,
        "batch_size": batch_size,
        "train_rows": int(len(train_y[0] if task == "bpnet" else train_y)),
        "history": {k: [float(v) for v in vals] for k, vals in history.history.items()},
        "layers": layer_summary(model),
        "uses_learning_phase": bool(model.uses_learning_phase),
        "rc_batchnorm_statistics": rc_batchnorm_statistics(model),
    }
    return entry, arrays


def references(x, seed):
    """N_REFERENCES dinucleotide shuffles per sequence (deeplift's shuffler), (N, R, L, 4)."""
    rng = np.random.RandomState(seed)
    return np.stack([dinuc_shuffle(seq, N_REFERENCES, rng) for seq in x]).astype(np.float32)


RULES = {
    "rescale": dict(nonlinear_mxts_mode=NonlinearMxtsMode.Rescale,
                    dense_mxts_mode=DenseMxtsMode.Linear, conv_mxts_mode=ConvMxtsMode.Linear),
    "genomics": dict(nonlinear_mxts_mode=NonlinearMxtsMode.DeepLIFT_GenomicsDefault,
                     dense_mxts_mode=DenseMxtsMode.Linear, conv_mxts_mode=ConvMxtsMode.Linear),
}
TARGET_LAYER = -2  # the Dense before the sigmoid: deeplift refuses an activation as target


def averaged_scores(dl_model, x, refs, tasks):
    """Contributions and hypothetical contributions of every task, averaged over the R
    references of each sequence (DeepSHAP), as float32 (T, N, L, 4) arrays."""
    contribs = dl_model.get_target_contribs_func(
        find_scores_layer_idx=0, target_layer_idx=TARGET_LAYER)
    multipliers = dl_model.get_target_multipliers_func(
        find_scores_layer_idx=0, target_layer_idx=TARGET_LAYER)
    r = refs.shape[1]
    scores = np.zeros((tasks,) + x.shape, np.float64)
    hyp = np.zeros_like(scores)
    for task in range(tasks):
        for j in range(r):
            ref = refs[:, j]
            kwargs = dict(task_idx=task, input_data_list=[x], input_references_list=[ref],
                          batch_size=64, progress_update=None)
            scores[task] += np.asarray(contribs(**kwargs)) / r
            m = np.asarray(multipliers(**kwargs))
            hyp[task] += (m - (m * ref).sum(-1, keepdims=True)) / r
    return scores.astype(np.float32), hyp.astype(np.float32)


def deeplift_scores(h5_path, x, refs, tasks):
    """Scores of the original deeplift on (x, refs) for every rule set, and with the rescale
    rules on the all-zero reference; raises what the converter raises for models it does not
    accept."""
    out = {}
    for rules_name, modes in sorted(RULES.items()):
        lm.fresh_session()
        dl_model = kerasapi_conversion.convert_model_from_saved_files(
            h5_path, verbose=False, **modes)
        out["dl_" + rules_name], hyp = averaged_scores(dl_model, x, refs, tasks)
        if rules_name == "rescale":
            out["dl_rescale_hyp"] = hyp
            zero = np.zeros((len(x), 1) + x.shape[1:], np.float32)
            out["dl_rescale_zero"] = averaged_scores(dl_model, x, zero, tasks)[0]
    return out


def try_deeplift(entry, arrays, out_dir):
    """Record deeplift's scores, or what its converter refused and why."""
    x = arrays["x"].astype(np.float32)
    h5_path = os.path.join(out_dir, entry["file"])
    refs = references(x, REFERENCE_SEED)
    tasks = arrays["logits"].shape[1] if "logits" in arrays else 1
    try:
        scores = deeplift_scores(h5_path, x, refs, tasks)
    except Exception as err:  # the converter's refusals are the record, whatever their type
        last = traceback.extract_tb(sys.exc_info()[2])[-1]
        entry["deeplift"] = {
            "accepted": False,
            "error": f"{type(err).__name__}: {str(err).strip().splitlines()[0][:300]}",
            "raised_at": f"{os.path.relpath(last.filename, os.path.dirname(deeplift.__file__))}"
                         f":{last.lineno}",
        }
        return
    arrays["refs"] = refs.astype(np.uint8)
    arrays.update(scores)
    entry["deeplift"] = {"accepted": True, "references": N_REFERENCES,
                         "reference_seed": REFERENCE_SEED,
                         "rules": {k: {m: str(v) for m, v in modes.items()}
                                   for k, modes in RULES.items()},
                         "target": f"target_layer_idx={TARGET_LAYER} (the Dense before the "
                                   "sigmoid)",
                         "maxpool_deeplift_mode": str(
                             kerasapi_conversion.default_maxpool_deeplift_mode)}


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def versions():
    import keras_genomics as kg

    return {"python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "keras_genomics": _dist_version("keras-genomics", kg),
            "deeplift": _dist_version("deeplift", deeplift), "h5py": h5py.__version__,
            "numpy": np.__version__}


def _dist_version(dist, module):
    try:
        import pkg_resources

        return pkg_resources.get_distribution(dist).version
    except Exception:  # pragma: no cover - metadata missing
        return getattr(module, "__version__", "unknown")


def simulate(benchmark_rc, data_dir):
    """Write every dataset of DATASETS with the main venv's CLI; returns the commands run."""
    commands = []
    for name, args in sorted(DATASETS.items()):
        command = [benchmark_rc] + args + ["--out", os.path.join(data_dir, name + ".h5")]
        subprocess.check_call(command)
        commands.append(" ".join(["benchmark-rc"] + command[1:]))
    return commands


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--benchmark-rc", required=True,
                        help="the main venv's benchmark-rc executable (writes the datasets)")
    parser.add_argument("--data", required=True, help="folder for the simulated datasets")
    parser.add_argument("--out", required=True, help="fixture folder (tests/fixtures/legacy)")
    args = parser.parse_args(argv)
    for folder in (args.data, args.out):
        if not os.path.isdir(folder):
            os.makedirs(folder)
    manifest = {"regenerate": REGENERATE, "versions": versions(), "data": {}, "models": {},
                "data_commands": simulate(args.benchmark_rc, args.data)}
    for name, builder, dataset, task, epochs, batch, n_keep, seed in MODELS:
        data_path = os.path.join(args.data, dataset + ".h5")
        manifest["data"][dataset + ".h5"] = data_params(data_path)
        print(f"training {name} on {dataset}", flush=True)
        entry, arrays = train(name, builder, data_path, task, epochs, batch, n_keep, seed,
                              args.out)
        try_deeplift(entry, arrays, args.out)  # every model; the refusals are recorded too
        np.savez_compressed(os.path.join(args.out, entry["arrays"]), **arrays)
        for key in ("file", "arrays"):
            path = os.path.join(args.out, entry[key])
            entry[key + "_bytes"] = os.path.getsize(path)
            entry[key + "_sha256"] = sha256(path)
        manifest["models"][name] = entry
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    total = sum(e["file_bytes"] + e["arrays_bytes"] for e in manifest["models"].values())
    print(f"wrote {len(MODELS)} models, {total / 1024:.1f} kB in all, to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
