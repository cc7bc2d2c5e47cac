"""The forecasting Lab: ensemble weather forecasts on a Lorenz-96 world, from the physics model and from learned
forecasters, scored as forecasters score them (fair CRPS, spread-skill, the rank histogram, an extreme event).

Headless use::

    lab = ForecastLab()                       # a 60-case world (lorenz96(n_cases=60, seed=0))
    lab.set(amplitude=0.5);  lab.result.ratio[3], lab.result.crps_fair[3]
    lab.set(forecaster="seeds", members=10);  lab.result.rank_counts

Latency: an ensemble is computed ONCE per (forecaster, kind, amplitude, model error, seed) at the largest size,
:data:`MAX_MEMBERS`, on the Lab's world, and kept (the settings a forecaster ignores are left out of the key:
the CRPS-trained generator and the Gaussian members start from the analysis, so they have one ensemble per
seed).  The ``members`` control takes the first M members of it (a prefix).  The CRPS and spread-skill curves of
EVERY prefix are computed once per ensemble (:func:`prefix_scores`, equal to the scoring routines'), the rank
histograms and the extreme event's reliability once per (ensemble, M) at all leads (by the routines), so a size
move costs milliseconds and moving the lead, the variable or the case only indexes.  The first visit to a SEEDS
setting generates 29 members (seconds on one thread, shown in the busy line and a progress bar).

Scores are against the TRUTH (a synthetic world knows it), averaged over the world's cases and its 40 variables
per lead; the plume shows the observations too.  The extreme event is ``x > q``, ``q`` the chosen quantile of
the truth's climate: every value of the world's truth (all cases, leads and variables; Lorenz-96 is homogeneous,
so one number serves every variable).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from ...forecast import (
    FORECASTERS,
    Lorenz96World,
    RankFlatness,
    ThresholdReliability,
    ensemble_forecast,
    forecast_cost,
    load_forecasters,
    lorenz96,
    rank_histogram,
    rank_histogram_flatness,
    threshold_reliability,
)
from ...forecast.perturbations import PERTURBATIONS
from ...forecast.scores import prefix_scores
from ..base import Lab, cached
from ..challenges import Target, challenge
from ..state import SEED, LabState, Setting

__all__ = [
    "ForecastState",
    "ForecastResult",
    "ForecastLab",
    "MAX_MEMBERS",
    "N_CASES",
    "AMPLITUDES",
    "MODEL_ERRORS",
    "QUANTILES",
    "USES_PERTURBATIONS",
    "CHALLENGE_CRPS",
    "ensemble_key",
]

MAX_MEMBERS = 31  # the size every ensemble is computed at (the members control takes a prefix)
N_CASES = 60  # cases of the Lab's default world: a SEEDS ensemble of 31 members takes seconds on one thread
AMPLITUDES: tuple[float, ...] = (0.1, 0.25, 0.5, 0.75, 1.0)  # 0.5 = the world's analysis error (obs_noise)
MODEL_ERRORS: tuple[float, ...] = (-1.0, -0.5, 0.0, 0.5)  # the model's forcing error; the world's is -0.5
QUANTILES: tuple[float, ...] = (0.9, 0.95, 0.99)  # of the truth's climate: the extreme event's threshold
MAX_LEAD = 10
MAX_VARIABLE = 39
#: forecasters whose ensemble depends on the perturbation (kind, amplitude) and the model error
USES_PERTURBATIONS = ("physics", "emulator", "seeds", "seeds-post-processed")
#: the challenge's bound on the fair CRPS at day 3 (see ``ForecastLab.CHALLENGES``): on the default world the
#: known solution (random perturbations of amplitude 0.5, the analysis error) scores 0.73, bred vectors of
#: amplitude 0.75 (spread-skill 1.07, also calibrated) 0.85 and the default (amplitude 0.1) 0.93
CHALLENGE_CRPS = 0.80
CHALLENGE_DAY = 3


class ForecastState(LabState):
    """Settings of the forecasting Lab."""

    SETTINGS = {
        "forecaster": Setting(str, "physics", "who makes the ensemble", choices=FORECASTERS),
        "members": Setting(int, 20, "ensemble size M (the first M members)", low=2, high=MAX_MEMBERS),
        "kind": Setting(str, "random", "initial perturbations: 'random' or 'bred' vectors", choices=PERTURBATIONS),
        "amplitude": Setting(
            float, 0.1, "size of the initial perturbations (0.5 = the analysis error)", choices=AMPLITUDES
        ),
        "model_error": Setting(
            float, -0.5, "the physics model's forcing error (the world's model has -0.5)", choices=MODEL_ERRORS
        ),
        "lead": Setting(int, 3, "the lead time shown, in days", low=0, high=MAX_LEAD),
        "variable": Setting(int, 0, "the variable of the plume", low=0, high=MAX_VARIABLE),
        "case": Setting(int, 0, "the forecast case of the plume", low=0),
        "quantile": Setting(float, 0.95, "the extreme event: x above this quantile of the climate", choices=QUANTILES),
        "seed": SEED,
    }


@dataclass(frozen=True)
class ForecastResult:
    """What the Lab shows for one State (all float64 tensors on the cpu; numbers are rounded only by the View).

    Curves over every lead, ``(L + 1,)``: ``lead_days``; ``crps_fair`` and ``crps`` (standard) CRPS, the mean over
    cases and variables; ``spread``, ``skill``, ``ratio`` (:func:`~ensemble_lab.forecast.scores.spread_skill` per
    lead); ``reference_crps_fair``: the physics ensemble's fair CRPS with the same perturbations, model error,
    seed and M (the reference line; equal to ``crps_fair`` when the forecaster is the physics).
    At the chosen ``lead``: ``rank_counts`` ``(M + 1,)`` and their ``flatness`` (``rank_top``: the largest count
    at any lead where the members differ, which keeps the histogram's axis still as the lead moves; a lead whose
    members all coincide, such as a learned forecaster's lead 0, may exceed it); ``reliability`` of the event
    ``x > threshold`` (``threshold`` = the ``quantile`` of the truth's climate), its ``brier`` and ``brier_fair``
    scores (means over points).
    The plume: ``plume`` ``(M, L + 1)`` members of ``variable`` for ``case``, with its ``truth`` and
    ``observations`` ``(L + 1,)``.
    ``costs``: forecaster -> ``{"macs": MACs per member and lead (forecast_cost), "seconds": measured seconds per
    member of the last ensemble of it this Lab computed (all cases and leads; NaN if none yet)}``.
    ``n_cases``: the world's cases the scores average over.
    """

    forecaster: str
    members: int
    lead: int
    variable: int
    case: int
    lead_days: torch.Tensor
    crps_fair: torch.Tensor
    crps: torch.Tensor
    spread: torch.Tensor
    skill: torch.Tensor
    ratio: torch.Tensor
    reference_crps_fair: torch.Tensor
    rank_counts: torch.Tensor
    rank_top: int
    flatness: RankFlatness
    reliability: ThresholdReliability
    brier: float
    brier_fair: float
    threshold: float
    quantile: float
    plume: torch.Tensor
    truth: torch.Tensor
    observations: torch.Tensor
    costs: dict[str, dict[str, float]]
    n_cases: int

    def at_day(self, curve: str, day: float) -> float:
        """The value of curve ``curve`` (e.g. ``"ratio"``) at lead ``day``."""
        i = int(torch.argmin((self.lead_days - day).abs()))
        return float(getattr(self, curve)[i])


def ensemble_key(forecaster: str, kind: str, amplitude: float, model_error: float, seed: int) -> tuple:
    """The cache key of an ensemble: the settings ``forecaster`` ignores are left out (None).

    >>> ensemble_key("crps-generator", "bred", 0.5, 0.0, 3)
    ('crps-generator', None, None, None, 3)
    >>> ensemble_key("emulator", "random", 0.5, 0.0, 3)  # random perturbations are not bred with the model
    ('emulator', 'random', 0.5, None, 3)
    """
    if forecaster == "emulator" and kind == "random":
        return (forecaster, kind, amplitude, None, seed)  # the model error only breeds the bred vectors
    if forecaster in USES_PERTURBATIONS:
        return (forecaster, kind, amplitude, model_error, seed)
    return (forecaster, None, None, None, seed)


def _day3(curve: str):
    return lambda r, s: r.at_day(curve, CHALLENGE_DAY)


class ForecastLab(Lab):
    """Ensemble forecasts of a Lorenz-96 world and their scores.

    Args:
        world: a :class:`~ensemble_lab.forecast.world.Lorenz96World` with 40 variables (the learned forecasters
            were trained on it) and at most 10 leads; default ``lorenz96(n_cases=60, seed=0)``.
        forecasters: the learned forecasters (default: the shipped ones, loaded on first use).
        progress: show a progress bar while a slow (SEEDS) ensemble is generated.
        state: initial settings.
    """

    State = ForecastState
    KEY = "forecast"
    CHALLENGES = (
        challenge(
            "under-dispersed",
            "Fix the under-dispersed ensemble",
            "the physics ensemble from perturbations of 0.1 is far too confident (a U-shaped rank histogram): "
            f"with the model as it is (model error -0.5), reach a spread-skill ratio in [0.9, 1.1] at day "
            f"{CHALLENGE_DAY} and a fair CRPS below {CHALLENGE_CRPS:.2f} there",
            Target("forecaster", lambda r, s: s.forecaster, "==", "physics", fmt=str),
            Target("model error", lambda r, s: s.model_error, "==", -0.5, fmt=lambda x: f"{x:+.1f}"),
            Target(f"spread-skill at day {CHALLENGE_DAY}", _day3("ratio"), ">=", 0.9, fmt=lambda x: f"{x:.2f}"),
            Target(f"spread-skill at day {CHALLENGE_DAY}", _day3("ratio"), "<=", 1.1, fmt=lambda x: f"{x:.2f}"),
            Target(
                f"fair CRPS at day {CHALLENGE_DAY}", _day3("crps_fair"), "<", CHALLENGE_CRPS, fmt=lambda x: f"{x:.3f}"
            ),
        ),
    )

    def __init__(
        self,
        world: Lorenz96World | None = None,
        forecasters=None,
        *,
        progress: bool = True,
        state: ForecastState | None = None,
    ):
        if world is None:
            world = lorenz96(n_cases=N_CASES, seed=0)
        if not isinstance(world, Lorenz96World):
            raise TypeError(
                f"world must be a Lorenz96World (from ensemble_lab.forecast.lorenz96), got {type(world).__name__}"
            )
        if world.n_variables != MAX_VARIABLE + 1:
            raise ValueError(
                f"world must have {MAX_VARIABLE + 1} variables (the learned forecasters were trained on them), "
                f"got {world.n_variables}"
            )
        if not 1 <= world.n_leads <= MAX_LEAD:
            raise ValueError(f"world must have 1 to {MAX_LEAD} leads, got {world.n_leads}")
        self.world = world
        self._forecasters = forecasters
        self.progress = bool(progress)
        self.seconds: dict[str, float] = {}
        self._macs: dict[str, float] = {}  # forecaster -> measured seconds per member of its last ensemble
        self._truth = world.truth
        self._days = world.lead_days.round(decimals=9)  # 3.0, not 3.0000000000000004
        super().__init__(state)

    # -- the world and the forecasters ------------------------------------------------------------------
    def nets(self):
        """The learned forecasters (loaded once; a missing file is a ValueError for the status line)."""
        if self._forecasters is None:
            try:
                self._forecasters = load_forecasters()
            except (OSError, KeyError, RuntimeError) as exc:
                raise ValueError(f"forecaster: the learned forecasters could not be loaded ({exc})") from None
        return self._forecasters

    @cached(maxsize=8)
    def threshold(self, quantile: float) -> float:
        """The ``quantile`` of the truth's climate (every value of the world's truth)."""
        return float(torch.quantile(self._truth.reshape(-1), quantile))

    def macs(self) -> dict[str, float]:
        """MACs per member and lead of every forecaster (:func:`forecast_cost`; NaN while the learned
        forecasters cannot be loaded, asked again next time)."""
        for name in FORECASTERS:
            if math.isnan(self._macs.get(name, math.nan)):
                try:
                    nets = None if name == "physics" else self.nets()
                    self._macs[name] = forecast_cost(name, forecasters=nets)
                except ValueError:
                    self._macs[name] = math.nan
        return dict(self._macs)

    # -- the ensembles ----------------------------------------------------------------------------------
    @cached(maxsize=16)
    def ensemble(self, key: tuple) -> torch.Tensor:
        """The ``(MAX_MEMBERS, N, L + 1, J)`` ensemble (float64) of ``key`` (:func:`ensemble_key`), computed once."""
        forecaster, kind, amplitude, model_error, seed = key
        slow = forecaster.startswith("seeds")
        what = (
            f"generating {MAX_MEMBERS - 2} members from 2 physics seeds ({forecaster})…"
            if slow
            else f"computing {MAX_MEMBERS} members ({forecaster})…"
        )
        with self.working(what, progress=slow and self.progress):
            nets = None if forecaster == "physics" else self.nets()
            start = time.perf_counter()
            x = ensemble_forecast(
                forecaster,
                self.world,
                MAX_MEMBERS,
                amplitude=amplitude,
                kind=kind or "random",
                model_error=model_error,
                seed=seed,
                forecasters=nets,
            )
            self.seconds[forecaster] = (time.perf_counter() - start) / MAX_MEMBERS
        return x.double().contiguous()

    @cached(maxsize=16)
    def prefix_curves(self, key: tuple) -> dict[str, torch.Tensor]:
        """:func:`prefix_scores` of ensemble ``key``: the CRPS and spread-skill curves of every size, once."""
        return prefix_scores(self.ensemble(key), self._truth, dim=(0, 2), validate=False)

    @cached(maxsize=128)
    def curves(self, key: tuple, members: int) -> dict:
        """Every per-lead score of the first ``members`` members of ensemble ``key``: CRPS (fair, standard),
        spread, skill and their ratio ``(L + 1,)`` (rows of :meth:`prefix_curves`), and the rank histogram per
        lead (:func:`rank_histogram`, counts and flatness)."""
        x = self.ensemble(key)[:members]
        y = self._truth
        rows = {name: t[members] for name, t in self.prefix_curves(key).items()}
        if bool((rows["skill"] == 0).any()):
            raise ValueError(
                "members: the spread-skill ratio is undefined, the ensemble mean equals the truth at some lead"
            )
        counts = [rank_histogram(x[:, :, i], y[:, i], seed=key[-1]) for i in range(y.shape[1])]
        # the axis is sized on the leads where the members differ: a learned forecaster starts all its members
        # from the analysis, and lead 0's two full end bins would flatten every other lead's histogram
        spread = [i for i in range(len(counts)) if float(rows["spread"][i]) > 0] or range(len(counts))
        return {
            **rows,
            "rank_counts": counts,
            "rank_top": int(max(int(counts[i].max()) for i in spread)),
            "flatness": [rank_histogram_flatness(c) for c in counts],
        }

    @cached(maxsize=128)
    def extremes(self, key: tuple, members: int, quantile: float) -> dict:
        """The event ``x > threshold(quantile)`` per lead: reliability (:func:`threshold_reliability`) and the
        Brier scores (means over points), read off the reliability's counts: ``count_k`` points were forecast
        with ``k`` of the M members above, ``hits_k`` of them saw the event, so the standard Brier score is
        ``sum_k [hits_k (k/M - 1)^2 + (count_k - hits_k) (k/M)^2] / n`` and the fair one (Ferro 2014, as
        :func:`brier_threshold` computes it) puts ``c (c - 1) / (M (M - 1))`` for ``c`` members on the wrong side,
        ``M - k`` for a hit and ``k`` otherwise."""
        x = self.ensemble(key)[:members]
        y = self._truth
        t = self.threshold(quantile)
        m = members
        k = torch.arange(m + 1, dtype=torch.float64)
        out = {"reliability": [], "brier": [], "brier_fair": []}
        for i in range(y.shape[1]):
            r = threshold_reliability(x[:, :, i], y[:, i], t)
            hits, misses = r.hits.double(), (r.count - r.hits).double()
            p = k / m
            out["reliability"].append(r)
            out["brier"].append(float((hits * (p - 1) ** 2 + misses * p**2).sum()) / r.n_points)
            wrong_hit, wrong_miss = m - k, k
            fair = hits * wrong_hit * (wrong_hit - 1) + misses * wrong_miss * (wrong_miss - 1)
            out["brier_fair"].append(float(fair.sum()) / (m * (m - 1)) / r.n_points)
        return out

    # -- the computation --------------------------------------------------------------------------------
    def _check_view(self, state: ForecastState) -> None:
        w = self.world
        if state.lead > w.n_leads:
            raise ValueError(f"lead must be in [0, {w.n_leads}] (this world's leads), got {state.lead}")
        if state.case >= w.n_cases:
            raise ValueError(f"case must be in [0, {w.n_cases - 1}] (this world's cases), got {state.case}")

    def compute(self, state: ForecastState) -> ForecastResult:
        self._check_view(state)
        m, i = state.members, state.lead
        key = ensemble_key(state.forecaster, state.kind, state.amplitude, state.model_error, state.seed)
        ref = ensemble_key("physics", state.kind, state.amplitude, state.model_error, state.seed)
        c = self.curves(key, m)
        e = self.extremes(key, m, state.quantile)
        reference = c if ref == key else self.curves(ref, m)
        x = self.ensemble(key)
        macs = self.macs()
        return ForecastResult(
            forecaster=state.forecaster,
            members=m,
            lead=i,
            variable=state.variable,
            case=state.case,
            lead_days=self._days,
            crps_fair=c["crps_fair"],
            crps=c["crps"],
            spread=c["spread"],
            skill=c["skill"],
            ratio=c["ratio"],
            reference_crps_fair=reference["crps_fair"],
            rank_counts=c["rank_counts"][i],
            rank_top=c["rank_top"],
            flatness=c["flatness"][i],
            reliability=e["reliability"][i],
            brier=e["brier"][i],
            brier_fair=e["brier_fair"][i],
            threshold=self.threshold(state.quantile),
            quantile=state.quantile,
            plume=x[:m, state.case, :, state.variable].clone(),
            truth=self._truth[state.case, :, state.variable].clone(),
            observations=self.world.observations[state.case, :, state.variable].clone(),
            costs={n: {"macs": macs[n], "seconds": self.seconds.get(n, math.nan)} for n in FORECASTERS},
            n_cases=self.world.n_cases,
        )
