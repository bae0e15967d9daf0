"""Start-up of the command line: TensorFlow's logging environment and its native start-up noise.

TensorFlow reads ``TF_CPP_MIN_LOG_LEVEL`` once, when it loads. On a machine without an NVIDIA
driver its CUDA probe logs ``E ... failed call to cuInit: ... UNKNOWN ERROR (303)`` — an ERROR
where nothing is wrong — so the command line sets the level before TensorFlow loads, unless the
user set it. Before TensorFlow initialises its logger, its shared libraries also print a few
INFO lines straight to the process's stderr, whatever the level; :func:`quiet_native_stderr`
drops exactly those (:data:`NATIVE_STARTUP_NOISE`) and passes everything else through.

Only the command line uses this module; ``import benchmark_rc`` from a user's script leaves the
environment and stderr alone. Standard library only: it runs before TensorFlow is imported.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator

# Files present wherever an NVIDIA driver is loaded (bare metal and `docker run --gpus`).
NVIDIA_DRIVER_FILES = ("/proc/driver/nvidia/version", "/dev/nvidiactl")

# Lines TensorFlow 2.21's libraries print before logging is initialised, on every start.
_ALWAYS_NOISE = (
    r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$",
    r"port\.cc:\d+\] oneDNN custom operations are on\.",
    r"cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized to use available CPU",
    r"^To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler",
)
# ... and those that only say "no GPU", dropped only where no GPU driver exists.
_NO_GPU_NOISE = (r"cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine",)


def gpu_driver_present() -> bool:
    """Whether an NVIDIA driver is loaded: TensorFlow's CUDA probe can succeed only then."""
    return any(os.path.exists(path) for path in NVIDIA_DRIVER_FILES)


def tensorflow_log_level(gpu_driver: bool) -> str:
    """``TF_CPP_MIN_LOG_LEVEL`` for the command line: "1" (warnings and errors, GPU messages
    among them) where a GPU driver exists; "3" where none does, because there the C++ errors
    logged at start-up are the failed CUDA probes. Python exceptions still report every real
    failure, and ``benchmark-rc doctor`` says which devices were found."""
    return "1" if gpu_driver else "3"


def configure_tensorflow_logging() -> None:
    """Set TensorFlow's logging level before it loads; a value the user set wins."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", tensorflow_log_level(gpu_driver_present()))


def native_startup_noise(gpu_driver: bool) -> re.Pattern[str]:
    """One pattern matching the start-up lines :func:`quiet_native_stderr` drops."""
    patterns = _ALWAYS_NOISE + (() if gpu_driver else _NO_GPU_NOISE)
    return re.compile("|".join(f"(?:{p})" for p in patterns))


@contextlib.contextmanager
def quiet_native_stderr(noise: re.Pattern[str] | None = None) -> Iterator[None]:
    """Capture file descriptor 2 (where C++ libraries write) for the duration, then replay every
    captured line except those matching ``noise`` (default :func:`native_startup_noise`)."""
    noise = noise or native_startup_noise(gpu_driver_present())
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no file descriptor 2 (a detached process): nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode("utf-8", "replace").splitlines(True)
                    if not noise.search(line)]
            sys.stderr.write("".join(kept))
            sys.stderr.flush()


def register_layers_quietly() -> None:
    """Register benchmark_rc's layers (which loads TensorFlow) without its start-up noise."""
    from benchmark_rc import register_layers

    with quiet_native_stderr():
        register_layers()
