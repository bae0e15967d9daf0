"""The attribution method registry (what the command line, the runner and scoring read), the
DeepLIFT rules table as an extension point, and the memo of traced functions."""

from __future__ import annotations

import argparse
import gc
import warnings
import weakref

import keras
import numpy as np
import pandas as pd
import pytest
from conftest import tiny_conv_model

from benchmark_rc.attribution import rules
from benchmark_rc.attribution.batching import memoised
from benchmark_rc.attribution.deeplift import deepshap, rescale_function
from benchmark_rc.attribution.methods import (
    METHODS,
    AttributionMethod,
    get_method,
    method_names,
    register_method,
)
from benchmark_rc.attribution.references import dinuc_shuffle_references
from benchmark_rc.attribution.runner import attribute_and_score
from benchmark_rc.attribution.scoring import score_attributions
from benchmark_rc.attribution.targets import model_spec, predict_target
from benchmark_rc.errors import UserError
from benchmark_rc.sequence import reverse_complement
from benchmark_rc.tasks import get_task

N, L = 3, 24


def tiny_model(seed: int = 0) -> keras.Model:
    return tiny_conv_model(L, seed)


@pytest.fixture(scope="module")
def case():
    rng = np.random.default_rng(1)
    x = np.eye(4, dtype=np.uint8)[rng.integers(0, 4, (N, L))]
    motifs = pd.DataFrame({"seq": np.arange(N), "start": [2, 8, 14], "end": [7, 13, 19]})
    return tiny_model(), x, motifs


@pytest.fixture
def registered():
    """Register methods for one test; the registry is restored afterwards."""
    added: list[str] = []

    def add(method: AttributionMethod) -> AttributionMethod:
        added.append(method.name)
        return register_method(method)

    yield add
    for name in added:
        METHODS.pop(name, None)


def test_every_registered_method_runs_through_the_runner(case):
    model, x, motifs = case
    results, rows = attribute_and_score(model, {"sequence": x}, motifs, list(METHODS), 1,
                                        task=get_task("classification"), n_shuffles=2,
                                        steps=3, batch_size=16)
    assert list(results) == list(METHODS)
    for name, (attr, hyp) in results.items():
        method = METHODS[name]
        assert attr.shape == (N, L, 4) and attr.dtype == np.float32, name
        assert np.isfinite(attr).all() and np.abs(attr).max() > 0, name
        if method.supports_hypothetical:
            assert hyp.shape == (N, L, 4)
            # exact by definition: actual = hypothetical x one-hot
            np.testing.assert_array_equal(attr, hyp * x)
        else:
            assert hyp is None
    assert [r["method"] for r in rows] == [m for m in METHODS for _ in range(2)]
    assert all("rc_consistency" in r and r["n"] == N for r in rows)


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_takes_the_one_signature(case, name):
    model, x, _ = case
    method = METHODS[name]
    refs = dinuc_shuffle_references(x, 2, seed=0) if method.needs_references else None
    out = method(model, x, output=0, references=refs, hypothetical=False, batch_size=7,
                 progress=False, **({"logits": True} if "logits" in method.options else {}))
    assert out.shape == (N, L, 4) and out.dtype == np.float32
    # the function itself has the same signature (the object only checks the arguments)
    raw = method.fn(model, x.astype(np.float32), output=0, references=refs, hypothetical=False,
                    batch_size=7, progress=False)
    np.testing.assert_array_equal(raw, out)  # the same computation repeated
    if method.supports_hypothetical:
        hyp = method(model, x, output=0, references=refs, hypothetical=True)
        assert hyp.shape == (N, L, 4)


def test_method_objects_check_their_arguments(case):
    model, x, _ = case
    refs = dinuc_shuffle_references(x, 2, seed=0)
    with pytest.raises(UserError, match="'ism' gives no hypothetical scores"):
        METHODS["ism"](model, x, output=0, hypothetical=True)
    with pytest.raises(UserError, match="'saliency' takes no references"):
        METHODS["saliency"](model, x, output=0, references=refs)
    with pytest.raises(UserError, match=r"'gradcam' takes no option\(s\) \['steps'\]"):
        METHODS["gradcam"](model, x, output=0, steps=3)
    with pytest.raises(UserError, match="unknown attribution method 'nope'; choose from "
                                        + ", ".join(METHODS)):
        get_method("nope")
    assert get_method(METHODS["ism"]) is METHODS["ism"]
    with pytest.raises(ValueError, match="already registered"):
        register_method(METHODS["ism"])
    with pytest.raises(ValueError, match="no commas"):
        AttributionMethod("a,b", METHODS["ism"].fn)
    # the runner refuses an option no registered method takes (a typo would be ignored)
    with pytest.raises(UserError, match=r"no attribution method takes the option\(s\) \['stpes'\]"):
        attribute_and_score(model, {"sequence": x}, None, ["saliency"], 0,
                            task=get_task("classification"), stpes=3)


def test_a_registered_method_reaches_the_runner_scoring_and_cli(case, registered):
    model, x, motifs = case
    calls: list[dict] = []

    def dummy(model, x, *, output=None, references=None, hypothetical=False, batch_size=None,
              progress=False, scale=1.0):
        calls.append({"refs": references, "hypothetical": hypothetical, "scale": scale,
                      "output": output})
        seq = np.asarray(x, dtype=np.float32)
        # position-dependent and strand-aware: the RC pass sees reverse-complemented input
        return (scale * (seq + np.arange(L, dtype=np.float32)[:, None] / L)).astype(np.float32)

    method = registered(AttributionMethod("dummy", dummy, needs_references=True,
                                          supports_hypothetical=True, mutagenesis=True,
                                          options=("scale",)))
    results, rows = attribute_and_score(model, {"sequence": x}, motifs, ["dummy", "saliency"],
                                        1, task=get_task("classification"), n_shuffles=2,
                                        seed=5, scale=2.0, logits=True)
    first, rc_pass = calls
    # references: the shared shuffles, reverse-complemented for the RC pass
    np.testing.assert_array_equal(first["refs"], dinuc_shuffle_references(x, 2, seed=5))
    np.testing.assert_array_equal(rc_pass["refs"], reverse_complement(first["refs"]))
    assert first["hypothetical"] and not rc_pass["hypothetical"]
    assert first["scale"] == rc_pass["scale"] == 2.0 and first["output"] == 1
    attr, hyp = results["dummy"]
    np.testing.assert_array_equal(attr, hyp * x)
    # scoring reads the method's flag: a mutagenesis map is reduced as ISM maps are
    for convention in ("prakash", "koo"):
        row = next(r for r in rows if r["method"] == "dummy" and r["convention"] == convention)
        expected = score_attributions(attr, x, motifs, convention, ism=True)
        assert row["auroc"] == expected["auroc"] and row["auprc"] == expected["auprc"]
        assert score_attributions(attr, x, motifs, convention, method="dummy") == expected
        assert score_attributions(attr, x, motifs, convention, method=method) == expected
    # the command line accepts it without any list being edited
    from benchmark_rc.commands.attribute import _methods, method_choices

    assert "dummy" in method_choices()
    assert _methods("saliency,dummy") == ["saliency", "dummy"]


def _subparser(name: str) -> argparse.ArgumentParser:
    from benchmark_rc.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


def _action(parser: argparse.ArgumentParser, option: str) -> argparse.Action:
    return next(a for a in parser._actions if option in a.option_strings)


def test_cli_method_choices_are_the_registry(registered):
    from benchmark_rc.commands.attribute import method_choices

    assert method_choices() == tuple(METHODS)
    action = _action(_subparser("attribute"), "--methods")
    assert all(name in action.help for name in METHODS)
    assert action.type(",".join(METHODS)) == list(METHODS)
    with pytest.raises(argparse.ArgumentTypeError, match="choose from " + ", ".join(METHODS)):
        action.type("deepshap,nope")
    registered(AttributionMethod("late_method", METHODS["saliency"].fn))
    assert action.type("late_method") == ["late_method"]  # read at parse time
    # `motifs --method`: the methods whose hypothetical scores `attribute` writes
    motifs = _action(_subparser("motifs"), "--method")
    assert tuple(motifs.choices) == method_names(hypothetical=True)
    assert set(motifs.choices) == {n for n, m in METHODS.items() if m.supports_hypothetical}
    # --maxpool-rule: the rules module's max-pool rules
    assert tuple(_action(_subparser("attribute"), "--maxpool-rule").choices) == \
        tuple(rules.MAX_RULES)


class _Atan(keras.layers.Layer):
    def call(self, inputs):
        return keras.ops.arctan(inputs)


def test_a_new_op_type_is_one_rules_table_entry(monkeypatch):
    rng = np.random.default_rng(2)
    inp = keras.Input((L, 4))
    h = _Atan()(keras.layers.Conv1D(4, 5)(inp))
    model = keras.Model(inp, keras.layers.Dense(1)(keras.layers.Flatten()(h)))
    for w in model.weights:
        w.assign(rng.normal(0, 0.5, w.shape).astype("float32"))
    x = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (N, L))]
    refs = dinuc_shuffle_references(x, 3, seed=0)
    with pytest.raises(UserError, match="type Atan .* neither linear nor a supported"):
        deepshap(model, x, references=refs)
    # one entry: atan is element-wise, so the rescale rule (TensorFlow's gradient as fallback)
    monkeypatch.setitem(rules.RULES, "Atan", lambda division: rules.Rescale())
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # the summation-to-delta check
        scores = deepshap(model, x, references=refs)
    n, r = refs.shape[:2]
    f_x = predict_target(model, x)
    f_r = predict_target(model, refs.reshape(n * r, L, 4)).reshape(n, r)
    delta = f_x - f_r.mean(1)
    # float32 sums of 4L contributions and targets of size ~|f|: rounding ~ eps * |f| * sqrt(4L)
    scale = np.abs(f_x).max() + np.abs(f_r).max() + np.abs(scores).sum((1, 2)).max()
    np.testing.assert_allclose(scores.sum((1, 2)), delta, rtol=0, atol=1e-5 * scale)
    assert np.abs(delta).max() > 1e-2  # not a degenerate comparison
    assert not rules._TRACES  # the per-trace state is gone once the trace is built


def test_traced_functions_are_memoised_per_model():
    model = tiny_model(3)
    spec = model_spec(model)
    fn = rescale_function(model, spec, 0, True, 2, rules.CONTINUOUS)
    assert rescale_function(model, spec, 0, True, 2, rules.CONTINUOUS) is fn
    assert rescale_function(model, spec, 0, True, 2, rules.SHAP) is not fn

    class Owner:
        pass

    owner, built = Owner(), []
    for _ in range(2):
        memoised(owner, "k", lambda: built.append(1) or len(built))
    assert built == [1]
    assert memoised(owner, "k", lambda: 99) == 1
    assert memoised(Owner(), "k", lambda: 99) == 99  # per owner
    # an owner without a __dict__ is not memoised
    assert memoised(1, "k", lambda: 7) == 7 and memoised(1, "k", lambda: 8) == 8


def test_the_memo_does_not_keep_models_alive(case):
    """The traced functions refer to their model; a memo outside the model kept every model
    ever attributed alive (a sweep's scoring loads one per run)."""
    _, x, _ = case
    model = tiny_model(4)
    for method in METHODS.values():
        refs = dinuc_shuffle_references(x, 2, seed=0) if method.needs_references else None
        method(model, x, output=0, references=refs)
    gone = weakref.ref(model)
    del model
    gc.collect()
    assert gone() is None


def test_every_method_defaults_leave_out_second_implementations():
    """ism_fast computes ISM's values: "every method" (distinct) lists ism once, the full list
    keeps both, and every same_values_as names a registered method."""
    from benchmark_rc.attribution.methods import METHODS, method_names

    assert "ism_fast" in method_names() and "ism_fast" not in method_names(distinct=True)
    assert "ism" in method_names(distinct=True)
    for m in METHODS.values():
        assert m.same_values_as is None or m.same_values_as in METHODS, m.name
