"""`benchmark-rc doctor`: versions, devices, Keras backend and a serialisation self-check.

The self-check round-trips every custom layer registered under the ``benchmark_rc`` package
through ``keras.saving`` (serialize -> deserialize -> identical config) and one whole model
through a .keras and a .h5 file loaded with the default ``safe_mode``.
"""

from __future__ import annotations

import argparse
import json

PACKAGES = ("tensorflow", "keras", "numpy", "h5py", "shap", "scikit-learn", "scipy", "pyfaidx",
            "pyBigWig", "simdna", "deeplift", "pandas", "matplotlib")
PACKAGE_PREFIX = "benchmark_rc>"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def registered_layers() -> dict[str, type]:
    """Every class registered by benchmark_rc with keras.saving, keyed by its registered name."""
    import keras

    import benchmark_rc  # noqa: F401  (registers the layers)

    return {name: cls for name, cls in keras.saving.get_custom_objects().items()
            if name.startswith(PACKAGE_PREFIX)}


def _example_layers() -> list:
    """Layer instances from the models the registry builds (every strategy, small inputs)."""
    import benchmark_rc

    layers = []
    for strategy in benchmark_rc.list_strategies():
        model = benchmark_rc.build_model("sim", strategy, input_length=200)
        layers.extend(_walk(model))
    for strategy in ("rcps", "conjoined", "hybrid-all", "irrep"):
        layers.extend(_walk(benchmark_rc.build_model("bpnet", strategy)))
    layers.extend(_walk(benchmark_rc.build_model("koo-cnn-deep", "irrep")))  # trunk pooling
    tiny = {"input_length": 256, "n_tower": 2, "output_bins": 32, "filters": 8, "heads": 2,
            "position_features": 6}
    for strategy in ("standard", "rcps", "irrep"):  # the attention layers and track heads
        layers.extend(_walk(benchmark_rc.build_model("enformer", strategy, **tiny)))
    standard = benchmark_rc.build_model("bpnet", "standard")
    layers.extend(_walk(benchmark_rc.conjoin(standard, "bpnet", mode="logit")))
    return layers


def _walk(model) -> list:
    found = []
    for layer in model.layers:
        found.append(layer)
        if hasattr(layer, "layers"):
            found.extend(_walk(layer))
    return found


def self_check() -> dict[str, str]:
    """Round-trip each registered layer; returns {registered name: "ok" | error text}."""
    import keras

    registered = registered_layers()
    examples: dict[str, object] = {}
    for layer in _example_layers():
        name = keras.saving.get_registered_name(type(layer))
        if name in registered and name not in examples:
            examples[name] = layer
    results = {}
    for name, cls in sorted(registered.items()):
        try:
            layer = examples.get(name) or cls()
            config = keras.saving.serialize_keras_object(layer)
            clone = keras.saving.deserialize_keras_object(json.loads(json.dumps(config)))
            if type(clone) is not cls or clone.get_config() != layer.get_config():
                raise ValueError("deserialised layer differs from the original")
            results[name] = "ok"
        except Exception as err:  # report every failure, keep checking the rest
            results[name] = f"FAILED: {type(err).__name__}: {err}"
    return results


def model_round_trip() -> str:
    """Save an RCPS sim model as .keras and .h5, reload each with :func:`benchmark_rc.load_model`
    (default ``safe_mode``), compare outputs."""
    import tempfile
    from pathlib import Path

    import numpy as np

    import benchmark_rc
    from benchmark_rc.training import save_model_atomic

    model = benchmark_rc.build_model("sim", "rcps", input_length=200)
    x = np.random.default_rng(0).random((4, 200, 4), dtype=np.float32)
    expected = model.predict(x, verbose=0)
    with tempfile.TemporaryDirectory() as tmp:
        for suffix in (".keras", ".h5"):
            path = Path(tmp) / f"model{suffix}"
            save_model_atomic(model, path)
            reloaded = benchmark_rc.load_model(path, compile=False)
            diff = float(np.max(np.abs(reloaded.predict(x, verbose=0) - expected)))
            if diff > 0:  # exact: the same weights run through the same kernels
                return f"FAILED: {suffix} reload differs by {diff:g}"
    return "ok"


def collect() -> dict:
    import os
    import platform

    import keras
    import tensorflow as tf

    from benchmark_rc._version import __version__
    from benchmark_rc.startup import gpu_driver_present
    from benchmark_rc.training import versions

    devices = [d.name.removeprefix("/physical_device:") for d in tf.config.list_physical_devices()]
    layers = self_check()
    return {
        "benchmark_rc": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions(PACKAGES, missing="not installed", system=False),
        "keras_backend": keras.backend.backend(),
        "devices": devices,
        "gpu_available": any(d.startswith("GPU") for d in devices),
        "nvidia_driver": gpu_driver_present(),
        "tf_cpp_min_log_level": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"),
        "registered_layers": layers,
        "model_round_trip": model_round_trip(),
    }


def _device_note(report: dict) -> str:
    """What the device list means, and where TensorFlow's own GPU messages went."""
    level = report["tf_cpp_min_log_level"]
    if report["gpu_available"]:
        return f"GPU in use (TensorFlow C++ log level {level})."
    if report["nvidia_driver"]:
        return (f"an NVIDIA driver is loaded but TensorFlow found no usable GPU: running on CPU. "
                f"Rerun with TF_CPP_MIN_LOG_LEVEL=0 to see TensorFlow's CUDA messages "
                f"(now {level}).")
    return (f"no NVIDIA driver on this machine: running on CPU (TensorFlow's failed CUDA probe "
            f"is not shown at log level {level}; TF_CPP_MIN_LOG_LEVEL=0 shows it).")


def run(args: argparse.Namespace) -> int:
    report = collect()
    ok = (all(v == "ok" for v in report["registered_layers"].values())
          and report["registered_layers"] and report["model_round_trip"] == "ok")
    if args.json:
        print(json.dumps(report, indent=2))
        return 0 if ok else 1
    print(f"benchmark_rc {report['benchmark_rc']}  (Python {report['python']}, {report['platform']})")
    for package, version in report["versions"].items():
        print(f"  {package:<14} {version}")
    print(f"Keras backend: {report['keras_backend']}")
    print(f"Devices: {', '.join(report['devices'])}")
    print(f"  {_device_note(report)}")
    print(f"Registered Keras objects ({len(report['registered_layers'])} layers and losses), "
          "serialisation round trip:")
    for name, status in report["registered_layers"].items():
        print(f"  {name:<40} {status}")
    print(f"Model save/load (.keras, .h5, safe_mode): {report['model_round_trip']}")
    print("  Load saved models with benchmark_rc.load_model(path) (a .keras/.h5 file or a run "
          "directory),\n  or import benchmark_rc before keras.models.load_model(path).")
    print("doctor: all checks passed" if ok else "doctor: SOME CHECKS FAILED")
    return 0 if ok else 1
