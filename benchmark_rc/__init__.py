"""benchmark_rc: reverse-complement equivariant deep learning on DNA (TensorFlow 2 / Keras 3).

Importing the package registers every custom Keras layer, so ``keras.models.load_model`` works
on saved .h5 and .keras files with the default ``safe_mode``.
"""

from benchmark_rc import layers  # noqa: F401  (registers every custom layer)
from benchmark_rc._version import __version__
from benchmark_rc.registry import (
    build_model,
    conjoin,
    list_architectures,
    list_strategies,
    logits_model,
    rc_inputs,
    rc_outputs,
)
from benchmark_rc.sequence import reverse_complement

__all__ = [
    "__version__",
    "build_model",
    "conjoin",
    "list_architectures",
    "list_strategies",
    "logits_model",
    "rc_inputs",
    "rc_outputs",
    "reverse_complement",
]
