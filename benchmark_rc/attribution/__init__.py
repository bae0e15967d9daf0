"""Attribution: DeepLIFT/DeepSHAP (native, batched), ISM, gradients, integrated gradients,
GradCAM; ground-truth scoring, RC-consistency and TF-MoDISco export.

Every method returns (N, L, 4) float32 for (N, L, 4) one-hot input. The methods the command
line, the runner and scoring know are the entries of one registry, :data:`METHODS`
(:mod:`benchmark_rc.attribution.methods`). The DeepLIFT engine is split into
:mod:`~benchmark_rc.attribution.rules` (the rules table), :mod:`~benchmark_rc.attribution.targets`
(what scalar each output is explained as) and :mod:`~benchmark_rc.attribution.batching` (chunks,
device, progress, the memo of traced functions).
"""

from benchmark_rc.attribution.deeplift import combine_multipliers, deepshap
from benchmark_rc.attribution.export import write_attribution_h5, write_modisco_npz
from benchmark_rc.attribution.gradients import (
    gradcam,
    input_x_gradient,
    integrated_gradients,
    saliency,
)
from benchmark_rc.attribution.ism import ism, ism_fast
from benchmark_rc.attribution.methods import (
    METHODS,
    AttributionMethod,
    get_method,
    register_method,
)
from benchmark_rc.attribution.references import dinuc_shuffle_references
from benchmark_rc.attribution.scoring import motif_mask, rc_consistency, score_attributions
from benchmark_rc.attribution.targets import TrackTarget, predict_target

__all__ = [
    "METHODS",
    "AttributionMethod",
    "TrackTarget",
    "combine_multipliers",
    "deepshap",
    "dinuc_shuffle_references",
    "get_method",
    "gradcam",
    "input_x_gradient",
    "integrated_gradients",
    "ism",
    "ism_fast",
    "motif_mask",
    "predict_target",
    "rc_consistency",
    "register_method",
    "saliency",
    "score_attributions",
    "write_attribution_h5",
    "write_modisco_npz",
]
