"""The winning-team world: its pure helpers, and what must hold between the outputs of the real (cached) world."""

import itertools
import math

import pytest
import torch

from ensemble_lab.artefacts import transfer_world as tw
from ensemble_lab.artefacts.transfer_world import (
    ESTIMATORS,
    LABEL_SEEDS,
    N_PER_CLASS,
    N_TEST,
    SOURCE_TASKS,
    TARGET_TASKS,
    TEAM_SIZES,
    TransferWorld,
    teams,
    transfer_world,
)

LEEP_LIKE = ("MS-LEEP", "E-LEEP")
OSBORN, NO_COHESION = "OSBORN", "OSBORN w/o cohesion"
TEAM_COUNTS = {1: 12, 2: 66, 3: 220}


def _n_classes(target: str) -> int:
    return 5 if TARGET_TASKS[target][2] == "pairs" else 10


# ----------------------------------------------------------------------------------------------------------
# pure helpers
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("pool", "size"), [(12, 1), (12, 2), (12, 3), (4, 4), (5, 2), (3, 0)])
def test_teams_are_every_combination_in_lexicographic_order(pool, size):
    got = teams(pool, size)
    assert got == sorted(got)
    assert len(got) == math.comb(pool, size) == len(set(got))
    assert all(len(t) == size and list(t) == sorted(set(t)) and all(0 <= i < pool for i in t) for t in got)
    assert got == list(itertools.combinations(range(pool), size))


def test_teams_of_the_world_pool():
    assert {k: len(teams(12, k)) for k in TEAM_SIZES} == TEAM_COUNTS
    assert teams(12, 2)[:3] == [(0, 1), (0, 2), (0, 3)]
    assert teams(12, 3)[-1] == (9, 10, 11)


DIGITS = torch.arange(10).repeat(3)  # every digit three times, in order


@pytest.mark.parametrize(
    ("label_set", "kept", "mapping", "classes"),
    [
        ("digits", list(range(10)), {d: d for d in range(10)}, tuple(str(d) for d in range(10))),
        ("0-4", [0, 1, 2, 3, 4], {d: d for d in range(5)}, ("0", "1", "2", "3", "4")),
        ("5-9", [5, 6, 7, 8, 9], {d: d - 5 for d in range(5, 10)}, ("5", "6", "7", "8", "9")),
        ("parity", list(range(10)), {d: d % 2 for d in range(10)}, ("even", "odd")),
        ("mod3", list(range(10)), {d: d % 3 for d in range(10)}, ("0 mod 3", "1 mod 3", "2 mod 3")),
        ("small/large", list(range(10)), {d: int(d >= 5) for d in range(10)}, ("small", "large")),
        ("pairs", list(range(10)), {d: d // 2 for d in range(10)}, ("0-1", "2-3", "4-5", "6-7", "8-9")),
    ],
)
def test_relabel_maps_each_digit_as_documented(label_set, kept, mapping, classes):
    keep, y, names = tw._relabel(DIGITS, label_set)
    assert keep.dtype == torch.bool
    assert keep.shape == DIGITS.shape
    assert DIGITS[keep].tolist() == [d for d in DIGITS.tolist() if d in kept]
    assert y.dtype == torch.int64
    assert y.tolist() == [mapping[d] for d in DIGITS[keep].tolist()]
    assert names == classes
    assert set(y.tolist()) == set(range(len(classes)))  # every class is reached, and no other
    # one digit at a time (the mapping does not depend on the neighbours)
    for d in range(10):
        k1, y1, _ = tw._relabel(torch.tensor([d]), label_set)
        assert bool(k1[0]) == (d in kept)
        if d in kept:
            assert y1.tolist() == [mapping[d]]


def test_every_label_set_of_the_world_is_known():
    sets = {s for _, s in SOURCE_TASKS.values()} | {t[2] for t in TARGET_TASKS.values()}
    assert sets == {"digits", "0-4", "5-9", "parity", "mod3", "small/large", "pairs"}
    with pytest.raises(ValueError, match="unknown label set 'hex'"):
        tw._relabel(DIGITS, "hex")


def test_seed_is_checked_before_anything_is_built():
    with pytest.raises(ValueError, match="seed"):
        transfer_world(seed=-1, progress=False)
    with pytest.raises(TypeError, match="seed"):
        transfer_world(seed=1.5, progress=False)


# ----------------------------------------------------------------------------------------------------------
# the real world (built once per session, about 30 s; cached)
# ----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world() -> TransferWorld:
    return transfer_world(progress=False)


def _keys(world):
    return [(t, s) for t in world.targets for s in LABEL_SEEDS]


def test_world_shape(world):
    assert world.sources == tuple(SOURCE_TASKS)
    assert len(world.sources) == 12
    assert world.targets == tuple(TARGET_TASKS)
    assert len(world.targets) == 3
    assert {k: len(v) for k, v in world.teams.items()} == TEAM_COUNTS
    assert world.teams == {k: teams(12, k) for k in TEAM_SIZES}
    keys = set(_keys(world))
    assert set(world.accuracy) == set(world.scores) == set(world.osborn_terms) == keys
    for key in keys:
        assert set(world.accuracy[key]) == set(TEAM_SIZES)
        assert set(world.scores[key]) == set(ESTIMATORS)
        for k in TEAM_SIZES:
            assert world.accuracy[key][k].shape == (TEAM_COUNTS[k],)
            assert world.accuracy[key][k].dtype == torch.float64
            for e in ESTIMATORS:
                assert world.scores[key][e][k].shape == (TEAM_COUNTS[k],)
                assert world.scores[key][e][k].dtype == torch.float64
        assert world.osborn_terms[key].shape == (12, 3)
        assert world.osborn_terms[key].dtype == torch.float64


def test_labelled_and_test_sizes(world):
    assert world.n_labelled == {t: N_PER_CLASS * _n_classes(t) for t in world.targets}
    assert N_PER_CLASS == 20
    assert world.n_labelled == {t: 200 if _n_classes(t) == 10 else 100 for t in world.targets}
    assert world.n_test == {t: N_TEST for t in world.targets}


def test_accuracy_is_a_fraction_of_the_test_images(world):
    for (target, _), by_size in world.accuracy.items():
        n = world.n_test[target]
        for acc in by_size.values():
            assert bool(((acc >= 0) & (acc <= 1)).all())
            torch.testing.assert_close(acc * n, (acc * n).round(), rtol=0, atol=1e-9)  # correct images / n_test
            assert float(acc.max()) > 1.0 / _n_classes(target)  # some team beats chance
    assert world.source_accuracy.shape == (12,)
    assert world.source_accuracy.dtype == torch.float64
    assert bool(((world.source_accuracy > 0) & (world.source_accuracy <= 1)).all())


def test_every_score_is_finite(world):
    for key in _keys(world):
        for e in ESTIMATORS:
            for k in TEAM_SIZES:
                assert bool(torch.isfinite(world.scores[key][e][k]).all()), (key, e, k)
        assert bool(torch.isfinite(world.osborn_terms[key]).all()), key


def test_leep_scores_lie_between_minus_the_label_entropy_and_zero(world):
    """Every LEEP-type score is a mean log-likelihood (<= 0) and, by Jensen, >= -H(Y|Z) >= -H(Y) = -log C (the
    labelled images are N_PER_CLASS per class)."""
    for target, s in _keys(world):
        floor = -math.log(_n_classes(target)) - 1e-9
        for e in LEEP_LIKE:
            for k in TEAM_SIZES:
                v = world.scores[(target, s)][e][k]
                assert float(v.max()) <= 0, (target, s, e, k)
                assert float(v.min()) >= floor, (target, s, e, k)


def test_size_one_ms_leep_equals_e_leep(world):
    for key in _keys(world):
        assert torch.equal(world.scores[key]["MS-LEEP"][1], world.scores[key]["E-LEEP"][1])


def test_e_leep_of_a_team_is_at_least_the_mean_leep_of_its_members(world):
    """log of a mean >= mean of logs, image by image."""
    for key in _keys(world):
        single = world.scores[key]["E-LEEP"][1]
        for k in (2, 3):
            mean_member = torch.stack([single[list(t)].mean() for t in world.teams[k]])
            assert bool((world.scores[key]["E-LEEP"][k] >= mean_member - 1e-12).all()), (key, k)


def test_osborn_without_cohesion_at_size_one_equals_osborn(world):
    for key in _keys(world):
        torch.testing.assert_close(world.scores[key][NO_COHESION][1], world.scores[key][OSBORN][1], rtol=0, atol=0)


def test_osborn_size_one_is_minus_domain_and_task_of_the_terms(world):
    for key in _keys(world):
        terms = world.osborn_terms[key]
        torch.testing.assert_close(world.scores[key][OSBORN][1], -(terms[:, 0] + terms[:, 1]), rtol=0, atol=1e-12)


def test_osborn_terms_lie_in_their_ranges(world):
    """Domain: a transport cost between unit-norm features (distances <= 2); task: H(Y|Z) in [0, log C];
    cohesion column: a mean total variation in [0, 1]."""
    for target, s in _keys(world):
        terms = world.osborn_terms[(target, s)]
        assert bool(((terms[:, 0] >= 0) & (terms[:, 0] <= 2 + 1e-9)).all())
        assert bool(((terms[:, 1] >= -1e-12) & (terms[:, 1] <= math.log(_n_classes(target)) + 1e-9)).all())
        assert bool(((terms[:, 2] >= 0) & (terms[:, 2] <= 1)).all())


def test_osborn_without_cohesion_is_modular(world):
    """Without cohesion a team scores the sum of its members' size-1 scores."""
    for key in _keys(world):
        single = world.scores[key][NO_COHESION][1]
        for k in (2, 3):
            want = torch.stack([single[list(t)].sum() for t in world.teams[k]])
            torch.testing.assert_close(world.scores[key][NO_COHESION][k], want, rtol=0, atol=1e-10)


def test_cohesion_is_the_sum_over_pairs_of_a_disagreement_in_0_1(world):
    """OSBORN w/o cohesion - OSBORN is the team's cohesion term: >= 0 (so OSBORN <= OSBORN w/o cohesion), at most
    1 per pair; a team of 3's is the sum of its 3 pairs'; and each model's mean over its 11 pairs is the third
    column of ``osborn_terms``."""
    for key in _keys(world):
        gap = {k: world.scores[key][NO_COHESION][k] - world.scores[key][OSBORN][k] for k in TEAM_SIZES}
        assert bool((gap[1] == 0).all())
        for k in (2, 3):
            assert bool((gap[k] >= -1e-12).all()), (key, k)
            assert bool((world.scores[key][OSBORN][k] <= world.scores[key][NO_COHESION][k] + 1e-12).all())
        assert bool((gap[2] <= 1 + 1e-12).all())
        pair = {t: float(g) for t, g in zip(world.teams[2], gap[2], strict=True)}
        want3 = torch.tensor(
            [pair[(a, b)] + pair[(a, c)] + pair[(b, c)] for a, b, c in world.teams[3]], dtype=torch.float64
        )
        torch.testing.assert_close(gap[3], want3, rtol=0, atol=1e-10)
        mean = torch.tensor(
            [sum(pair[tuple(sorted((m, o)))] for o in range(12) if o != m) / 11 for m in range(12)],
            dtype=torch.float64,
        )
        torch.testing.assert_close(world.osborn_terms[key][:, 2], mean, rtol=0, atol=1e-10)


def test_label_seeds_draw_different_labelled_images(world):
    """The estimators see only the labelled images, so another draw changes their scores (and the probes)."""
    for target in world.targets:
        a, b = world.scores[(target, 0)]["E-LEEP"][1], world.scores[(target, 1)]["E-LEEP"][1]
        assert not torch.equal(a, b)


def test_a_second_call_reads_the_cache(world):
    again = transfer_world(progress=False)
    assert again.seconds == 0.0
    for key in _keys(world):
        for k in TEAM_SIZES:
            assert torch.equal(again.accuracy[key][k], world.accuracy[key][k])
