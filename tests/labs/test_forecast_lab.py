"""Headless tests of the forecasting Lab on a small Lorenz-96 world (8 cases): every number against the scoring
routine it must come from, run on the same ensemble (``ensemble_forecast`` called afresh); the caches (one ensemble
per setting at 31 members, one set of per-lead scores per (ensemble, M)); refusals to the status line; links; and
the challenge on the Lab's default world (60 cases)."""

import math

import pytest
import torch

from ensemble_lab.forecast import (
    FORECASTERS,
    brier_threshold,
    crps_ensemble,
    ensemble_forecast,
    forecast_cost,
    lorenz96,
    rank_histogram,
    rank_histogram_flatness,
    spread_skill,
    threshold_reliability,
)
from ensemble_lab.forecast.scores import prefix_scores
from ensemble_lab.labs import Lab, links
from ensemble_lab.labs.base import lab_work
from ensemble_lab.labs.forecast import MAX_MEMBERS, N_CASES, ForecastLab, ForecastState, ensemble_key
from ensemble_lab.labs.forecast.lab import CHALLENGE_CRPS

from .conftest import assert_refused


@pytest.fixture(autouse=True)
def one_thread():
    with lab_work():
        yield


@pytest.fixture(scope="module")
def world():
    return lorenz96(n_cases=8, seed=3)


@pytest.fixture(scope="module")
def shared_lab(world):
    lab = ForecastLab(world, progress=False)
    return lab, lab.state.to_dict()


@pytest.fixture
def lab(shared_lab):
    lab, defaults = shared_lab
    assert lab.set(**defaults)
    return lab


def _fresh(world, s) -> torch.Tensor:
    """The ensemble the Lab must hold for State-like ``s``: ``ensemble_forecast`` at 31 members, called afresh."""
    return ensemble_forecast(
        s["forecaster"],
        world,
        MAX_MEMBERS,
        amplitude=s["amplitude"],
        kind=s["kind"],
        model_error=s["model_error"],
        seed=s["seed"],
    ).double()


def test_defaults_and_shapes(lab, world):
    assert lab.state.to_dict() == {
        "amplitude": 0.1,
        "case": 0,
        "forecaster": "physics",
        "kind": "random",
        "lead": 3,
        "members": 20,
        "model_error": -0.5,
        "quantile": 0.95,
        "seed": 0,
        "variable": 0,
    }
    r = lab.result
    leads = world.n_leads + 1
    for curve in ("lead_days", "crps_fair", "crps", "spread", "skill", "ratio", "reference_crps_fair"):
        assert getattr(r, curve).shape == (leads,)
    assert r.lead_days.tolist() == [float(d) for d in range(leads)]
    assert r.rank_counts.shape == (21,)
    assert int(r.rank_counts.sum()) == world.n_cases * world.n_variables
    assert r.plume.shape == (20, leads)
    assert r.n_cases == 8
    assert torch.equal(r.reference_crps_fair, r.crps_fair)  # the physics is its own reference


CASES = [
    # forecaster, kind, amplitude, model_error, members, lead, variable, case, quantile, seed
    ("physics", "random", 0.1, -0.5, 20, 3, 0, 0, 0.95, 0),
    ("physics", "bred", 0.75, 0.0, 5, 10, 39, 7, 0.9, 2),
    ("emulator", "random", 0.5, -0.5, 7, 0, 5, 3, 0.99, 1),
    ("crps-generator", "random", 0.5, -0.5, 2, 5, 12, 1, 0.95, 0),
    ("gaussian-members", "bred", 0.25, 0.5, 31, 1, 20, 2, 0.9, 4),
    ("seeds", "random", 0.5, -1.0, 4, 6, 3, 5, 0.95, 0),  # the one SEEDS ensemble here (about 1.5 s)
]


@pytest.mark.parametrize(
    ("forecaster", "kind", "amplitude", "model_error", "members", "lead", "variable", "case", "quantile", "seed"),
    CASES,
)
def test_numbers_are_the_routines_on_the_same_ensemble(
    lab, world, forecaster, kind, amplitude, model_error, members, lead, variable, case, quantile, seed
):
    s = dict(
        forecaster=forecaster,
        kind=kind,
        amplitude=amplitude,
        model_error=model_error,
        members=members,
        lead=lead,
        variable=variable,
        case=case,
        quantile=quantile,
        seed=seed,
    )
    assert lab.set(**s), lab.status
    r = lab.result
    full = _fresh(world, s)
    key = ensemble_key(forecaster, kind, amplitude, model_error, seed)
    assert torch.equal(lab.ensemble(key), full)
    x, y = full[:members], world.truth
    assert torch.allclose(r.crps_fair, crps_ensemble(x, y, fair=True).mean(dim=(0, 2)), rtol=1e-12, atol=0)
    assert torch.allclose(r.crps, crps_ensemble(x, y).mean(dim=(0, 2)), rtol=1e-12, atol=0)
    ss = spread_skill(x, y, dim=(0, 2))
    for name in ("spread", "skill", "ratio"):
        assert torch.allclose(getattr(r, name), getattr(ss, name), rtol=1e-12, atol=0)
    counts = rank_histogram(x[:, :, lead], y[:, lead], seed=seed)
    assert torch.equal(r.rank_counts, counts)
    assert r.flatness == rank_histogram_flatness(counts)
    t = float(torch.quantile(y.reshape(-1), quantile))
    assert r.threshold == t
    want = threshold_reliability(x[:, :, lead], y[:, lead], t)
    for name in ("probability", "count", "hits", "observed_frequency", "present"):
        assert torch.equal(getattr(r.reliability, name), getattr(want, name))
    assert r.reliability.base_rate == want.base_rate
    assert r.brier == pytest.approx(float(brier_threshold(x[:, :, lead], y[:, lead], t).mean()), rel=1e-12)
    assert r.brier_fair == pytest.approx(
        float(brier_threshold(x[:, :, lead], y[:, lead], t, fair=True).mean()), rel=1e-12, abs=1e-15
    )
    assert torch.equal(r.plume, x[:, case, :, variable])
    assert torch.equal(r.truth, y[case, :, variable])
    assert torch.equal(r.observations, world.observations[case, :, variable])
    phys = _fresh(world, {**s, "forecaster": "physics"})[:members]
    assert torch.allclose(r.reference_crps_fair, crps_ensemble(phys, y, fair=True).mean(dim=(0, 2)), rtol=1e-12)


@pytest.mark.parametrize(
    ("forecaster", "kind"),
    [("physics", "random"), ("physics", "bred"), ("emulator", "bred"), ("gaussian-members", "random")],
)
def test_a_smaller_ensemble_is_the_prefix_of_the_largest(world, forecaster, kind):
    """The members control takes the first M members of the 31: for these forecasters that is the M-member
    ensemble itself (the CRPS generator draws its noise for all members at once, so its first M are another
    draw of M exchangeable members than ``ensemble_forecast(..., M)``; the Lab's numbers are those of the
    prefix, which the tests above check)."""
    big = ensemble_forecast(forecaster, world, MAX_MEMBERS, amplitude=0.5, kind=kind, seed=1)
    small = ensemble_forecast(forecaster, world, 6, amplitude=0.5, kind=kind, seed=1)
    assert torch.allclose(small, big[:6], rtol=1e-6, atol=1e-6)


def test_prefix_scores_are_crps_ensemble_and_spread_skill_of_every_prefix(world):
    x = ensemble_forecast("physics", world, MAX_MEMBERS, amplitude=0.1, kind="bred", seed=5).double()
    y = world.truth
    got = prefix_scores(x, y, dim=(0, 2))
    for name in ("crps", "crps_fair", "spread", "skill", "ratio"):
        assert got[name].shape == (MAX_MEMBERS + 1, world.n_leads + 1)
    assert torch.isnan(got["crps"][0]).all()
    assert torch.allclose(got["crps"][1], (x[0] - y).abs().mean(dim=(0, 2)), rtol=1e-12, atol=0)
    for k in ("crps_fair", "spread", "ratio"):
        assert torch.isnan(got[k][:2]).all()
    for m in range(2, MAX_MEMBERS + 1):
        assert torch.allclose(got["crps"][m], crps_ensemble(x[:m], y).mean(dim=(0, 2)), rtol=1e-12, atol=0)
        assert torch.allclose(got["crps_fair"][m], crps_ensemble(x[:m], y, fair=True).mean(dim=(0, 2)), rtol=1e-12)
        ss = spread_skill(x[:m], y, dim=(0, 2))
        for name in ("spread", "skill", "ratio"):
            assert torch.allclose(got[name][m], getattr(ss, name), rtol=1e-11, atol=0)


def test_one_ensemble_per_setting_and_one_set_of_scores_per_size(world):
    lab = ForecastLab(world, progress=False)
    ens, curves = lab.ensemble, lab.curves
    assert (ens.cache_info().misses, curves.cache_info().misses) == (1, 1)
    for changes in ({"lead": 7}, {"variable": 30}, {"case": 5}, {"lead": 0, "variable": 2}):
        assert lab.set(**changes)
    assert (ens.cache_info().misses, curves.cache_info().misses) == (1, 1)  # indexing only
    assert lab.extremes.cache_info().misses == 1
    assert lab.set(quantile=0.9)
    assert (curves.cache_info().misses, lab.extremes.cache_info().misses) == (1, 2)
    assert lab.set(members=5)
    assert (ens.cache_info().misses, curves.cache_info().misses) == (1, 2)  # a prefix of the same ensemble
    assert lab.set(members=20)
    assert curves.cache_info().misses == 2  # revisited: cached
    assert lab.set(forecaster="crps-generator")  # a new ensemble, plus the physics reference's scores (cached)
    assert (ens.cache_info().misses, curves.cache_info().misses) == (2, 3)
    for changes in ({"amplitude": 1.0}, {"kind": "bred"}, {"model_error": 0.0}):
        assert lab.set(**changes)  # the generator starts from the analysis: its ensemble stays
    assert ens.cache_info().misses == 5  # ... but the physics reference changes with each
    assert lab.set(forecaster="physics")  # that reference is now cached
    assert ens.cache_info().misses == 5
    assert lab.set(forecaster="emulator", kind="random", model_error=-1.0)
    assert lab.set(model_error=0.5)  # with random perturbations the emulator ignores the model error
    assert ens.cache_info().misses == 8  # the emulator once, the two physics references
    assert ensemble_key("emulator", "random", 0.5, -1.0, 0) == ensemble_key("emulator", "random", 0.5, 0.5, 0)
    assert ensemble_key("emulator", "bred", 0.5, -1.0, 0) != ensemble_key("emulator", "bred", 0.5, 0.5, 0)


def test_generating_seeds_shows_in_the_busy_line(world):
    lab = ForecastLab(world, progress=False)
    seen = []
    lab.observe(lambda change: seen.append(change.new), names="busy")
    assert lab.set(forecaster="seeds-post-processed", members=3)
    assert f"generating {MAX_MEMBERS - 2} members from 2 physics seeds (seeds-post-processed)…" in seen
    assert lab.busy == ""
    assert lab.result.costs["seeds-post-processed"]["seconds"] > 0


def test_costs_are_forecast_cost_and_the_measured_seconds(lab):
    assert lab.set(forecaster="gaussian-members")
    costs = lab.result.costs
    assert list(costs) == list(FORECASTERS)
    for name in FORECASTERS:
        assert costs[name]["macs"] == forecast_cost(name)
    assert costs["physics"]["seconds"] > 0
    assert costs["gaussian-members"]["seconds"] > 0
    fresh = ForecastLab(lorenz96(n_cases=2, seed=0), progress=False)
    assert math.isnan(fresh.result.costs["emulator"]["seconds"])  # not computed in that Lab yet


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"members": 1}, "members must be in [2, 31], got 1"),
        ({"members": 32}, "members must be in [2, 31], got 32"),
        ({"forecaster": "persistence"}, "forecaster must be one of physics, emulator"),
        ({"kind": "singular"}, "kind must be one of random, bred"),
        ({"amplitude": 0.3}, "amplitude must be one of 0.1, 0.25, 0.5, 0.75, 1; got 0.3"),
        ({"model_error": 2.0}, "model_error must be one of -1, -0.5, 0, 0.5"),
        ({"lead": 11}, "lead must be in [0, 10], got 11"),
        ({"variable": 40}, "variable must be in [0, 39], got 40"),
        ({"case": 8}, "case must be in [0, 7] (this world's cases), got 8"),
        ({"case": -1}, "case must be >= 0, got -1"),
        ({"quantile": 0.5}, "quantile must be one of 0.9, 0.95, 0.99"),
        ({"members": 2.5}, "members must be a whole number"),
        ({"members": 5, "lead": 12}, "lead must be in [0, 10], got 12"),  # all or nothing
        ({"ensemble": 3}, "unknown setting(s) ['ensemble']"),
    ],
)
def test_bad_settings_are_refused_to_the_status_line(lab, change, fragment):
    assert_refused(lab, change, fragment)
    assert lab.set(members=4)
    assert lab.status == ""


def test_a_world_with_fewer_leads_refuses_the_later_ones():
    lab = ForecastLab(lorenz96(n_cases=2, n_leads=4, seed=0), progress=False, state=ForecastState(lead=2))
    assert_refused(lab, {"lead": 5}, "lead must be in [0, 4] (this world's leads), got 5")
    lab.state.lead = 9  # a direct assignment is rolled back the same way
    assert lab.state.lead == 2
    assert "lead must be in [0, 4]" in lab.status


def test_wrong_constructor_arguments_are_named(world):
    with pytest.raises(TypeError, match="world must be a Lorenz96World"):
        ForecastLab(world.truth)
    with pytest.raises(ValueError, match="world must have 40 variables"):
        ForecastLab(lorenz96(n_variables=20, n_cases=2))
    with pytest.raises(ValueError, match="world must have 1 to 10 leads, got 12"):
        ForecastLab(lorenz96(n_cases=2, n_leads=12))
    with pytest.raises(TypeError, match="state must be a ForecastState"):
        ForecastLab(world, state=object())


def test_link_round_trip(world):
    lab = ForecastLab(world, progress=False)
    default = lab.link()
    assert default.startswith("el1.forecast.")
    assert links.decode_link(default)["settings"] == {}
    changes = dict(
        forecaster="gaussian-members",
        members=9,
        kind="bred",
        amplitude=0.75,
        model_error=0.0,
        lead=6,
        variable=17,
        case=4,
        quantile=0.99,
        seed=2,
    )
    assert lab.set(**changes), lab.status
    text = lab.link()
    assert links.decode_link(text)["settings"] == changes
    for opener in (ForecastLab, Lab):
        again = opener.from_link(text, world, progress=False)
        assert type(again) is ForecastLab
        assert again.state.to_dict() == lab.state.to_dict()
        assert again.link() == text
        assert torch.equal(again.result.crps_fair, lab.result.crps_fair)
        assert torch.equal(again.result.rank_counts, lab.result.rank_counts)
    other = ForecastLab(world, progress=False)
    assert other.apply_link(text)
    assert other.state.to_dict() == lab.state.to_dict()
    assert ForecastState.from_dict(lab.state.to_dict()).to_dict() == lab.state.to_dict()
    small = ForecastLab(lorenz96(n_cases=3, seed=0), progress=False)
    assert not small.apply_link(text)  # case 4 is not in a 3-case world: refused, the State stays
    assert "case must be in [0, 2]" in small.status
    assert small.state.case == 0


# -- the challenge, on the Lab's default world ------------------------------------------------------------------


@pytest.fixture(scope="module")
def default_lab():
    lab = ForecastLab(progress=False)
    assert lab.world.n_cases == N_CASES == 60
    return lab


def _challenge(lab):
    ((challenge, solved, text),) = lab.challenge_status()
    assert challenge.key == "under-dispersed"
    return solved, text


def test_the_default_is_under_dispersed_and_fails_the_challenge(default_lab):
    lab = default_lab
    assert lab.set(**ForecastState().to_dict())
    r = lab.result
    solved, text = _challenge(lab)
    assert not solved
    assert r.at_day("ratio", 3) < 0.3  # far too confident
    counts = r.rank_counts.double()
    assert min(counts[0], counts[-1]) > 5 * counts[1:-1].mean()  # a U shape: the truth outside the members
    assert text.startswith("forecaster physics (goal = physics) ✓ · model error -0.5 (goal = -0.5) ✓ · ")
    assert f"fair CRPS at day 3 {r.at_day('crps_fair', 3):.3f} (goal < {CHALLENGE_CRPS:.3f})" in text


def test_the_known_solution_solves_the_challenge(default_lab):
    lab = default_lab
    assert lab.set(**{**ForecastState().to_dict(), "amplitude": 0.5})  # the analysis error's size
    solved, text = _challenge(lab)
    r = lab.result
    assert solved, text
    assert 0.9 <= r.at_day("ratio", 3) <= 1.1
    assert r.at_day("crps_fair", 3) < CHALLENGE_CRPS
    assert lab.set(members=31)
    assert _challenge(lab)[0]


def test_calibrated_is_not_enough_and_a_perfect_model_is_not_allowed(default_lab):
    lab = default_lab
    assert lab.set(**{**ForecastState().to_dict(), "kind": "bred", "amplitude": 0.75})
    r = lab.result
    solved, text = _challenge(lab)
    assert 0.9 <= r.at_day("ratio", 3) <= 1.1  # calibrated ...
    assert r.at_day("crps_fair", 3) >= CHALLENGE_CRPS  # ... but not sharp enough
    assert not solved
    assert lab.set(kind="random", amplitude=0.5, model_error=0.0)  # the perfect model: not the model you have
    solved, text = _challenge(lab)
    assert not solved
    assert "model error +0.0 (goal = -0.5) ·" in text


def test_the_rank_axis_is_sized_on_the_leads_where_the_members_differ(lab):
    """The CRPS generator starts every member at the analysis: at lead 0 its members coincide and the truth is
    below or above all of them, two full end bins.  The axis top is the largest count at the other leads, so it
    does not flatten their histograms; for the physics (perturbed at lead 0) it is the largest at any lead."""
    assert lab.set(forecaster="crps-generator", lead=0)
    r = lab.result
    assert float(r.spread[0]) == 0.0
    at_zero = int(r.rank_counts.max())
    later = []
    for lead in range(1, lab.world.n_leads + 1):
        assert lab.set(lead=lead)
        later.append(int(lab.result.rank_counts.max()))
    assert lab.result.rank_top == max(later) < at_zero
    assert lab.set(forecaster="physics", lead=0)
    counts = [int(lab.result.rank_counts.max())]
    for lead in range(1, lab.world.n_leads + 1):
        assert lab.set(lead=lead)
        counts.append(int(lab.result.rank_counts.max()))
    assert lab.result.rank_top == max(counts)
