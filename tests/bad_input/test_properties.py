"""The bad-input contract as property tests, one per routine family, plus every catalogue case by itself.

Contract: bad input raises ValueError/TypeError naming the argument as the caller wrote it; never another
exception, never a silent return, never NaN/inf from finite valid-looking input; valid but unusual input
(numpy, float64, non-contiguous views, reordered keys) is accepted with a finite result.  The routines and
their values are in ``catalogue.py``; ``census.py`` counts what happens today.  Many of these tests fail on
the code as it was when they were written: they list what is left to fix.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[1])]  # the catalogue, and this checkout's ensemble_lab

import catalogue  # noqa: E402
from catalogue import ALLOWED, Value  # noqa: E402

MAX_EXAMPLES = 60
PROPERTY = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=(Phase.explicit, Phase.generate),  # no shrinking: a failing call is reported as drawn
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module", autouse=True)
def _set_up():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    catalogue.warm_up()
    yield
    torch.set_num_threads(threads)


def _check(case) -> None:
    """Fail (a one-line report, no traceback: there are hundreds) unless ``case`` went as the contract says."""
    outcome = catalogue.run(case)
    if outcome.category not in ALLOWED[case.expect]:
        pytest.fail(f"{case.id} [{case.expect}]: {outcome.category}: {outcome.what}", pytrace=False)


# ----------------------------------------------------------------------------------------------------------
# strategies: bad and valid values for an argument of each kind
# ----------------------------------------------------------------------------------------------------------


def _bad(desc: str, make) -> Value:
    return Value(desc, make, "bad")


def _const_bad(value) -> Value:
    return Value(f"{value!r}"[:60], lambda: value, "bad")


def _listed(arg, expect: str | None = None):
    """The catalogue's own values of ``arg`` (all, or those expected ``expect``)."""
    values = [v for v in arg.values if expect is None or v.expect == expect]
    return st.sampled_from(values) if values else st.nothing()


def _in_range(v: float, meta) -> bool:
    lo, hi = meta.get("lo", -math.inf), meta.get("hi", math.inf)
    if math.isnan(v) or math.isinf(v):
        return False
    above = v > lo or (v == lo and not meta.get("lo_open"))
    below = v < hi or (v == hi and not meta.get("hi_open"))
    return above and below


def _not_a_number(optional: bool):
    out = [
        st.complex_numbers(allow_nan=True, allow_infinity=True),
        st.text(max_size=6),
        st.from_regex(r"-?[0-9]{1,3}(\.[0-9]{1,3})?", fullmatch=True),  # numeric strings: "1.5"
        st.booleans(),
        st.lists(st.floats(-1, 1), min_size=2, max_size=3),
        st.lists(st.floats(-1, 1), min_size=2, max_size=3).map(np.array),
    ]
    return out if optional else [st.none(), *out]


def _real(arg):
    m = arg.meta
    lo, hi = m.get("lo", -math.inf), m.get("hi", math.inf)
    if math.isfinite(lo) or math.isfinite(hi):
        out_of_range = st.floats(allow_nan=True, allow_infinity=True).filter(lambda v: not _in_range(v, m))
    else:
        out_of_range = st.sampled_from([math.nan, math.inf, -math.inf])
    bad = st.one_of(out_of_range, *_not_a_number(m.get("optional", False))).map(_const_bad)
    extremes = []
    if hi == math.inf:
        extremes.append(st.floats(min_value=1e300, max_value=1.7e308))
    if lo == 0 and hi >= 1:
        extremes.append(st.floats(min_value=5e-324, max_value=1e-300))
    if lo == -math.inf:
        extremes.append(st.floats(min_value=-1.7e308, max_value=-1e300))
    options = [bad, _listed(arg, "valid")]
    if extremes:
        options.append(st.one_of(*extremes).map(lambda v: Value(f"{v!r}", lambda: v, "extreme")))
    return st.one_of(*options)


def _integer(arg):
    m = arg.meta
    lo, hi = m.get("minimum"), m.get("maximum")
    wrong = []
    if lo is not None:
        wrong.append(st.integers(min_value=-(2**80), max_value=lo - 1))
    if hi is not None:
        wrong.append(st.integers(min_value=hi + 1, max_value=2**80))
    wrong += [st.floats(allow_nan=True, allow_infinity=True), *_not_a_number(m.get("optional", False))]
    options = [st.one_of(*wrong).map(_const_bad), _listed(arg, "valid")]
    if hi is None:
        options.append(st.integers(min_value=2**63, max_value=2**80).map(lambda v: Value(f"{v}", lambda: v, "extreme")))
    return st.one_of(*options)


def _choice(arg):
    choices = arg.meta["choices"]
    bad = st.one_of(
        st.text(max_size=10).filter(lambda t: t not in choices),
        st.integers(),
        st.none(),
        st.binary(max_size=6),
        st.lists(st.sampled_from(choices), min_size=1, max_size=2),
    )
    return st.one_of(bad.map(_const_bad), _listed(arg, "valid"))


def _flag(arg):
    bad = st.one_of(
        st.text(max_size=6),
        st.integers().filter(lambda i: i not in (0, 1)),
        st.floats(allow_nan=True).filter(lambda v: v not in (0.0, 1.0)),
        st.none(),
        st.lists(st.booleans(), max_size=2),
    )
    return bad.map(_const_bad)


def _usable_device(x) -> bool:
    try:
        d = torch.device(x)
    except (RuntimeError, TypeError, ValueError):
        return False
    if d.type == "cpu":
        return True
    if d.type == "cuda":
        return torch.cuda.is_available() and (d.index is None or d.index < torch.cuda.device_count())
    return False


def _device(arg):
    bad = st.one_of(
        st.text(max_size=8),
        st.sampled_from(["cuda:7", "cuda:99", "mps", "meta", "cpu:x", "CUDA"]),
        st.integers(min_value=-3, max_value=64),
        st.floats(allow_nan=True),
    ).filter(lambda x: not _usable_device(x))
    return st.one_of(bad.map(_const_bad), _listed(arg, "valid"))


def _text(arg):
    bad = st.one_of(
        st.integers(),
        st.binary(min_size=1, max_size=6),
        st.lists(st.text(max_size=4), min_size=1, max_size=2),
        st.floats(allow_nan=True),
    )
    if not arg.meta.get("optional"):
        bad = st.one_of(bad, st.none())
    return bad.map(_const_bad)


def _texts(arg):
    base = arg.base()
    iterators = st.iterables(st.sampled_from(base), min_size=1, max_size=3).map(
        lambda it: _bad("an iterator of str", lambda it=it: it)
    )
    bad = st.one_of(
        st.text(min_size=1, max_size=8),
        st.lists(st.integers(), min_size=1, max_size=3),
        st.just([]),
        st.none(),
        st.lists(st.sampled_from(base), min_size=1, max_size=2).map(lambda xs: [*xs, None]),
    ).map(_const_bad)
    return st.one_of(bad, iterators, _listed(arg, "valid"))


def _bad_scalar():
    return st.one_of(
        st.sampled_from([math.nan, math.inf, -math.inf, None, True, "0.5", 1j]),
        st.text(max_size=3),
        st.complex_numbers(min_magnitude=0.1, max_magnitude=10).filter(lambda z: z.imag != 0),
    )


@st.composite
def _corrupt_list(draw, arg, extra_bad=None):
    base = list(arg.base() or [1.0] * arg.meta.get("k", 3))
    i = draw(st.integers(0, len(base) - 1))
    value = draw(st.one_of(_bad_scalar(), *([extra_bad] if extra_bad is not None else [])))
    out = [*base[:i], value, *base[i + 1 :]]
    return Value(f"entry {i} = {value!r}", lambda: list(out), "bad")


def _reals(arg):
    m = arg.meta
    lo, hi = m.get("lo", -math.inf), m.get("hi", math.inf)
    outside = st.floats(allow_nan=False, allow_infinity=False).filter(lambda v: not (lo <= v <= hi))
    extra = outside if math.isfinite(lo) or math.isfinite(hi) else None
    return st.one_of(_corrupt_list(arg, extra), _listed(arg))


def _weights(arg):
    negative = st.floats(max_value=-1e-6, allow_nan=False, allow_infinity=False)
    return st.one_of(_corrupt_list(arg, negative), _listed(arg))


_PROBS_KINDS = ("probs",)


@st.composite
def _tensor(draw, arg):
    """A corrupted copy of the valid tensor: an injected NaN/inf, a complex dtype, one dim fewer or more, no
    rows; for probabilities rows off the simplex, for labels a class out of range or a non-integer."""
    base = arg.base()
    descs = {v.desc for v in arg.values}
    hows = []
    hows += [h for h, d in (("nan", "NaN entry"), ("inf", "inf entry"), ("-inf", "-inf entry")) if d in descs]
    hows.append("complex")
    if "one dim fewer" in descs:
        hows.append("drop_dim")
    if "extra leading dim" in descs:
        hows.append("add_dim")
    if "empty (0 rows)" in descs:
        hows.append("empty")
    if arg.kind in _PROBS_KINDS:
        hows += ["scale", "negative"]
    if arg.kind == "labels" and "n_classes" in arg.meta:
        hows += ["out_of_range", "fraction"]
    if arg.kind == "correct":
        hows += ["not_0_1"]
    how = draw(st.sampled_from(hows))
    i = draw(st.integers(0, max(0, base.numel() - 1)))
    if how in ("nan", "inf", "-inf"):
        value = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}[how]
        return _bad(f"{how} at {i}", lambda: _put(arg.base(), i, value))
    if how == "complex":
        z = draw(st.complex_numbers(min_magnitude=0.5, max_magnitude=2).filter(lambda z: z.imag != 0))
        return _bad(f"complex (times {z!r})", lambda: arg.base().to(torch.complex64) * z)
    if how == "drop_dim":
        return _bad("one dim fewer", lambda: arg.base()[0])
    if how == "add_dim":
        return _bad("extra leading dim", lambda: arg.base().unsqueeze(0))
    if how == "empty":
        return _bad("no rows", lambda: arg.base()[:0])
    if how == "scale":
        f = draw(st.floats(min_value=1.05, max_value=1e6))
        return _bad(f"rows times {f!r}", lambda: arg.base() * f)
    if how == "negative":
        v = draw(st.floats(min_value=-1e6, max_value=-1e-3))
        return _bad(f"{v!r} at {i}", lambda: _put(arg.base(), i, v))
    if how == "out_of_range":
        c = arg.meta["n_classes"]
        v = draw(st.one_of(st.integers(-(2**62), -1), st.integers(c, 2**62)))
        return _bad(f"label {v} at {i}", lambda: _put(arg.base(), i, v))
    if how == "fraction":
        f = draw(st.floats(min_value=0.01, max_value=0.99))
        return _bad(f"labels plus {f!r}", lambda: arg.base().double() + f)
    v = draw(st.one_of(st.integers(2, 100), st.integers(-100, -1), st.floats(0.01, 0.99)))
    return _bad(f"{v!r} at {i}", lambda: _put(arg.base().to(torch.float64), i, v))


def _put(t: torch.Tensor, i: int, value) -> torch.Tensor:
    if isinstance(value, float) and not torch.is_floating_point(t):
        t = t.to(torch.float64)
    t = t.clone()
    t.view(-1)[i] = value
    return t


_TENSOR_KINDS = {
    "probs",
    "labels",
    "correct",
    "member_logits",
    "logits",
    "scores",
    "embeddings",
    "images",
    "prompt_logits",
    "vector",
    "temperatures",
    "edges",
    "bin_values",
    "counts",
    "terms",
    "head",
}


def value_strategy(arg):
    """Bad values of ``arg`` (and some valid and extreme ones), as :class:`catalogue.Value`."""
    if arg.kind == "real":
        return _real(arg)
    if arg.kind == "int":
        return _integer(arg)
    if arg.kind == "choice":
        return _choice(arg)
    if arg.kind == "flag":
        return _flag(arg)
    if arg.kind == "device":
        return _device(arg)
    if arg.kind == "text":
        return _text(arg)
    if arg.kind == "texts":
        return _texts(arg)
    if arg.kind == "reals":
        return _reals(arg)
    if arg.kind in ("weights", "costs"):
        return _weights(arg)
    if arg.kind in _TENSOR_KINDS:
        return st.one_of(_tensor(arg), _listed(arg, "valid"))
    return _listed(arg)  # state dicts, callables, models, datasets, shapes: the catalogue's own values


# ----------------------------------------------------------------------------------------------------------
# one property per family
# ----------------------------------------------------------------------------------------------------------


def _slots(family: str) -> dict[str, tuple]:
    out = {}
    for r in catalogue.routines():
        if r.family == family and r.available():
            for name in r.present():
                out[f"{r.id}:{name}"] = (r, name, r.args[name])
    return out


def _contract(family: str):
    slots = _slots(family)
    keys = sorted(slots)

    @PROPERTY
    @given(data=st.data())
    def test(data):
        key = data.draw(st.sampled_from(keys), label="routine:argument")
        routine, name, arg = slots[key]
        value = data.draw(value_strategy(arg), label="value")
        case = catalogue.make_case(routine, name, value)
        _check(case)

    test.__name__ = test.__qualname__ = f"test_{family}_contract"
    test.__doc__ = f"Every {family} routine refuses bad values by name and accepts valid unusual ones."
    return test


test_metrics_contract = _contract("metrics")
test_calibration_error_contract = _contract("calibration_error")
test_selective_contract = _contract("selective")
test_calibration_contract = _contract("calibration")
test_combine_contract = _contract("combine")
test_prompts_contract = _contract("prompts")
test_cascades_contract = _contract("cascades")
test_soups_contract = _contract("soups")
test_stats_contract = _contract("stats")
test_data_contract = _contract("data")
test_models_contract = _contract("models")
test_training_contract = _contract("training")
test_device_contract = _contract("device")
test_decompositions_contract = _contract("decompositions")
test_selection_contract = _contract("selection")
test_forecast_contract = _contract("forecast")
test_forests_contract = _contract("forests")


def test_every_family_has_a_property():
    tested = {
        name.removeprefix("test_").removesuffix("_contract")
        for name in globals()
        if name.startswith("test_") and name.endswith("_contract")
    }
    assert tested == set(catalogue.FAMILIES)


# ----------------------------------------------------------------------------------------------------------
# the whole catalogue, case by case
# ----------------------------------------------------------------------------------------------------------

CASES = catalogue.cases()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_catalogue_case(case):
    _check(case)
