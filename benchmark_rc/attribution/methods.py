"""The attribution methods in one registry: :data:`METHODS` (name -> :class:`AttributionMethod`).

The command line (``benchmark-rc attribute --methods``), the runner
(:mod:`benchmark_rc.attribution.runner`) and scoring (:func:`score_attributions` with
``method=``) read everything they need to know about a method from its entry: the function, with
one shared signature; whether it needs references; whether it gives hypothetical scores; how
actual scores follow from what it returns; and how scoring reduces its maps to per-position
scores. Nothing outside this module tests a method's name.

Add a method::

    def my_fn(model, x, *, output=None, references=None, hypothetical=False,
              batch_size=None, progress=False, logits=True):
        ...  # (N, L, 4) float32

    register_method(AttributionMethod("my_method", my_fn, options=("logits",)))

after which ``--methods my_method`` and the runner accept it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmark_rc.attribution.deeplift import deepshap
from benchmark_rc.attribution.gradients import (
    gradcam,
    input_x_gradient,
    integrated_gradients,
    saliency,
)
from benchmark_rc.attribution.ism import ism, ism_fast
from benchmark_rc.errors import UserError

# fn(model, x, *, output, references, hypothetical, batch_size, progress, **options) -> (N, L, 4)
MethodFunction = Callable[..., np.ndarray]


@dataclass(frozen=True)
class AttributionMethod:
    """One attribution method as the command line, the runner and scoring see it.

    Attributes:
        name: the name on the command line and in score tables (no commas).
        fn: ``fn(model, x, *, output=None, references=None, hypothetical=False,
            batch_size=None, progress=False, **options) -> (N, L, 4) float32``; ``x`` is
            (N, L, 4) one-hot or a dict of model inputs. Call the method object rather than
            ``fn``: it checks the arguments against the flags below.
        needs_references: ``fn`` explains the output relative to references (N, R, L, 4); the
            runner gives it dinucleotide shuffles (and their reverse complements for the
            RC-consistency pass).
        supports_hypothetical: ``fn`` returns hypothetical scores with ``hypothetical=True``
            (what TF-MoDISco reads); the runner then runs it once, hypothetically, and takes
            actual scores as hypothetical x one-hot (:meth:`actual`).
        mutagenesis: the output entries are output changes f(mutant) - f(x), not contributions;
            scoring reduces them as each paper reduces ISM maps
            (:func:`benchmark_rc.attribution.scoring.position_scores`).
        options: the keyword options ``fn`` takes besides the shared ones.
        summary: one line for help texts.
        same_values_as: the registered method whose values this one computes another way (e.g.
            restricted ISM for ISM); "every method" defaults leave it out so the same scores are
            not computed twice.
    """

    name: str
    fn: MethodFunction
    needs_references: bool = False
    supports_hypothetical: bool = False
    mutagenesis: bool = False
    options: tuple[str, ...] = ("logits",)
    summary: str = ""
    same_values_as: str | None = None

    def __post_init__(self) -> None:
        if not self.name or "," in self.name or self.name != self.name.strip():
            raise ValueError(f"method name {self.name!r}: non-empty, no commas or outer spaces")
        if not callable(self.fn):
            raise TypeError(f"method {self.name!r}: fn is not callable")

    def __call__(self, model: Any, x: Any, *, output: Any = None,
                 references: np.ndarray | None = None, hypothetical: bool = False,
                 batch_size: int | None = None, progress: bool = False,
                 **options: Any) -> np.ndarray:
        """Run the method: (N, L, 4) float32 (hypothetical scores with ``hypothetical``)."""
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise UserError(f"method {self.name!r} takes no option(s) {unknown}; its options: "
                            f"{', '.join(self.options) or 'none'}")
        if hypothetical and not self.supports_hypothetical:
            raise UserError(f"method {self.name!r} gives no hypothetical scores")
        if references is not None and not self.needs_references:
            raise UserError(f"method {self.name!r} takes no references")
        return self.fn(model, x, output=output, references=references,
                       hypothetical=hypothetical, batch_size=batch_size, progress=progress,
                       **options)

    def accepted(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """The entries of ``options`` this method takes (a caller serving several methods from
        one set of options passes each its own)."""
        return {k: v for k, v in options.items() if k in self.options}

    def actual(self, raw: np.ndarray, one_hot: np.ndarray) -> np.ndarray:
        """Actual scores from :meth:`attribute`'s run: hypothetical scores x one-hot for a
        method with hypothetical scores, the output as it is otherwise."""
        return raw * one_hot if self.supports_hypothetical else raw

    def attribute(self, model: Any, x: Any, one_hot: np.ndarray, *, output: Any = None,
                  references: np.ndarray | None = None, batch_size: int | None = None,
                  progress: bool = False,
                  **options: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """(actual scores, hypothetical scores or None) from one run of the method on ``x``
        (``one_hot``: its (N, L, 4) sequence)."""
        raw = self(model, x, output=output, references=references,
                   hypothetical=self.supports_hypothetical, batch_size=batch_size,
                   progress=progress, **options)
        return self.actual(raw, one_hot), (raw if self.supports_hypothetical else None)


METHODS: dict[str, AttributionMethod] = {}


def register_method(method: AttributionMethod, *, replace: bool = False) -> AttributionMethod:
    """Add ``method`` to :data:`METHODS` (``replace``: over an entry of the same name)."""
    if not isinstance(method, AttributionMethod):
        raise TypeError(f"expected an AttributionMethod, got {type(method).__name__}")
    if method.name in METHODS and not replace:
        raise ValueError(f"attribution method {method.name!r} is already registered")
    METHODS[method.name] = method
    return method


def get_method(method: str | AttributionMethod) -> AttributionMethod:
    """The registered method of that name (an AttributionMethod is returned as it is)."""
    if isinstance(method, AttributionMethod):
        return method
    if method not in METHODS:
        raise UserError(f"unknown attribution method {method!r}; choose from "
                        f"{', '.join(METHODS)}")
    return METHODS[method]


def method_names(*, hypothetical: bool | None = None, distinct: bool = False
                 ) -> tuple[str, ...]:
    """Registered names in registration order (``hypothetical``: only the methods that do, or
    do not, give hypothetical scores; ``distinct``: without the methods that compute another
    method's values, :attr:`AttributionMethod.same_values_as`)."""
    return tuple(name for name, m in METHODS.items()
                 if (hypothetical is None or m.supports_hypothetical == hypothetical)
                 and not (distinct and m.same_values_as))


def method_options(methods: Iterable[AttributionMethod] | None = None) -> set[str]:
    """Every option some of ``methods`` (default: every registered method) takes."""
    return {o for m in (METHODS.values() if methods is None else methods) for o in m.options}


# ----------------------------------------------------------------------------------------------
# the built-in methods, in the shared signature
# ----------------------------------------------------------------------------------------------
def _deepshap(model, x, *, output=None, references=None, hypothetical=False, batch_size=None,
              progress=False, **options):
    return deepshap(model, x, references=references, hypothetical=hypothetical, output=output,
                    batch_size=batch_size, progress=progress, **options)


def _integrated_gradients(model, x, *, output=None, references=None, hypothetical=False,
                          batch_size=None, progress=False, **options):
    return integrated_gradients(model, x, references=references, hypothetical=hypothetical,
                                output=output, batch_size=batch_size, progress=progress,
                                **options)


def _without_references(function: Callable[..., np.ndarray]) -> MethodFunction:
    """The shared signature for a method that takes neither references nor ``hypothetical``
    (the method object refuses them before the call)."""

    def fn(model, x, *, output=None, references=None, hypothetical=False, batch_size=None,
           progress=False, **options):
        return function(model, x, output=output, batch_size=batch_size, progress=progress,
                        **options)

    fn.__name__ = fn.__qualname__ = f"_{function.__name__}"
    fn.__doc__ = function.__doc__
    return fn


for _method in (
    AttributionMethod("deepshap", _deepshap, needs_references=True, supports_hypothetical=True,
                      options=("logits", "n_shuffles", "seed", "maxpool_rule", "check_delta"),
                      summary="DeepLIFT rescale rule averaged over references (DeepSHAP)"),
    AttributionMethod("ism", _without_references(ism), mutagenesis=True,
                      summary="in-silico mutagenesis: f(x with base b at p) - f(x)"),
    # ISM's values, recomputing per mutant only the positions it reaches (fastISM): a method of
    # its own so that the command line and the runner can choose it by name
    AttributionMethod("ism_fast", _without_references(ism_fast), mutagenesis=True,
                      summary="ISM recomputing only what each mutation reaches (fastISM)",
                      same_values_as="ism"),
    AttributionMethod("saliency", _without_references(saliency),
                      summary="gradient of the target"),
    AttributionMethod("input_x_gradient", _without_references(input_x_gradient),
                      summary="gradient x input"),
    AttributionMethod("integrated_gradients", _integrated_gradients, needs_references=True,
                      supports_hypothetical=True,
                      options=("logits", "n_shuffles", "seed", "steps"),
                      summary="integrated gradients from shuffled baselines (midpoint rule)"),
    AttributionMethod("gradcam", _without_references(gradcam),
                      options=("logits", "layer", "variant"),
                      summary="GradCAM at a conv layer, upsampled to bases"),
):
    register_method(_method)
del _method
