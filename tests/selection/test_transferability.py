"""Transferability estimators (ensemble_lab.selection.transferability) against slow, obviously correct references.

- LEEP, MS-LEEP and E-LEEP against plain python loops over samples, classes and (for MS-LEEP) tuples of classes,
  to 1e-12; the anchors derived in the module docstring (one-hot source: 0; constant source: -H of the empirical
  label frequencies); invariances (source classes, samples, target classes, members' order) with hypothesis;
  the identities (one member: LEEP; E-LEEP = LEEP of the concatenated outputs / K).
- OSBORN's transport term against brute force over permutations (equal sizes, n <= 6) and over permutations of
  replicated points (unequal sizes); its task and cohesion terms against loops; its submodularity on every pair of
  nested teams of a small pool.
- The greedy selection against brute force for a modular objective (the best team of size k).
- Bad input: errors naming the argument.
"""

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ensemble_lab.selection.transferability import e_leep, leep, ms_leep, osborn, select_team

# ----------------------------------------------------------------------------------------------------------
# references: plain loops
# ----------------------------------------------------------------------------------------------------------


def _joint_loop(probs, labels):
    n, zc = len(probs), len(probs[0])
    classes = range(max(labels) + 1)
    joint = {(y, z): 0.0 for y in classes for z in range(zc)}
    for i in range(n):
        for z in range(zc):
            joint[labels[i], z] += probs[i][z] / n
    pz = [sum(joint[y, z] for y in classes) for z in range(zc)]
    return joint, pz


def _eep_loop(probs, labels, i, y):
    """EEP(y | x_i) by loops."""
    joint, pz = _joint_loop(probs, labels)
    return sum(joint[y, z] / pz[z] * probs[i][z] for z in range(len(probs[0])) if pz[z] > 0)


def leep_loop(probs, labels):
    return sum(math.log(_eep_loop(probs, labels, i, labels[i])) for i in range(len(probs))) / len(probs)


def e_leep_loop(members, labels):
    total = 0.0
    for i in range(len(labels)):
        total += math.log(sum(_eep_loop(p, labels, i, labels[i]) for p in members) / len(members))
    return total / len(labels)


def ms_leep_loop(members, labels):
    tuples = list(itertools.product(*[range(len(p[0])) for p in members]))
    joint_probs = [
        [math.prod(p[i][z] for p, z in zip(members, t, strict=True)) for t in tuples] for i in range(len(labels))
    ]
    return leep_loop(joint_probs, labels)


def cond_entropy_loop(joint):
    """H(Y | Z) from a dict {(y, z): P(y, z)}."""
    zs = {z for _, z in joint}
    pz = {z: sum(v for (_, zz), v in joint.items() if zz == z) for z in zs}
    return -sum(v * math.log(v / pz[z]) for (_, z), v in joint.items() if v > 0)


def ot_brute(a, b):
    """Exact OT between uniform weights on rows of a (n, D) and b (n, D): min over permutations, by loops."""
    n = len(a)
    best, best_perm = math.inf, None
    for perm in itertools.permutations(range(n)):
        cost = sum(math.dist(a[i], b[perm[i]]) for i in range(n)) / n
        if cost < best:
            best, best_perm = cost, perm
    return best, best_perm


def _rand_probs(rng, n, z):
    return rng.dirichlet(np.full(z, 0.7), size=n)


def _random_pool(seed, m=3, n_s=5, n_t=5, d=3, z=3, y_classes=3):
    rng = np.random.default_rng(seed)
    fs = [torch.tensor(rng.normal(size=(n_s, d))) for _ in range(m)]
    ft = [torch.tensor(rng.normal(size=(n_t, d)) + 0.5) for _ in range(m)]
    probs = [torch.tensor(_rand_probs(rng, n_t, z + k)) for k in range(m)]
    y = torch.tensor(rng.integers(0, y_classes, size=n_t))
    return fs, ft, probs, y


# ----------------------------------------------------------------------------------------------------------
# LEEP
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_leep_matches_the_loop_reference(seed):
    rng = np.random.default_rng(seed)
    n, z, c = 13 + seed, 2 + seed, 2 + seed % 3
    probs = _rand_probs(rng, n, z)
    labels = rng.integers(0, c, size=n)
    assert leep(torch.tensor(probs), torch.tensor(labels)) == pytest.approx(
        leep_loop(probs.tolist(), labels.tolist()), abs=1e-12
    )


def test_leep_takes_numpy_and_float32():
    rng = np.random.default_rng(7)
    probs, labels = _rand_probs(rng, 20, 4), rng.integers(0, 3, size=20)
    ref = leep_loop(probs.tolist(), labels.tolist())
    assert leep(probs, labels) == pytest.approx(ref, abs=1e-12)
    assert leep(torch.tensor(probs, dtype=torch.float32), torch.tensor(labels)) == pytest.approx(ref, abs=1e-6)


def test_leep_of_a_one_hot_source_on_the_target_label_is_the_maximum_0():
    labels = torch.tensor([0, 2, 1, 2, 2, 0, 1])
    probs = torch.nn.functional.one_hot(labels, 3).double()
    assert leep(probs, labels) == 0.0
    # any source whose prediction determines the label does too (two source classes per target class)
    many = torch.nn.functional.one_hot(labels * 2 + torch.tensor([0, 1, 0, 1, 0, 1, 0]), 6).double()
    assert leep(many, labels) == pytest.approx(0.0, abs=1e-15)
    # and every source scores at most 0
    rng = np.random.default_rng(0)
    assert leep(torch.tensor(_rand_probs(rng, 7, 4)), labels) < 0


@given(seed=st.integers(0, 10**6), n=st.integers(1, 30), z=st.integers(2, 6), c=st.integers(1, 5))
@settings(max_examples=30, deadline=None)
def test_leep_of_a_constant_source_is_minus_the_entropy_of_the_label_frequencies(seed, n, z, c):
    # derivation: theta(x)_z = t_z for every x gives P(y, z) = q_y t_z, P(y | z) = q_y, EEP(y | x) = q_y, so
    # LEEP = (1/N) sum_i log q_{y_i} = sum_y q_y log q_y = -H(q) with q the empirical label frequencies
    rng = np.random.default_rng(seed)
    t = rng.dirichlet(np.ones(z))
    labels = rng.integers(0, c, size=n)
    q = np.bincount(labels) / n
    minus_h = float(sum(v * math.log(v) for v in q if v > 0))
    assert leep(torch.tensor(np.tile(t, (n, 1))), torch.tensor(labels)) == pytest.approx(minus_h, abs=1e-12)


@given(seed=st.integers(0, 10**6), n=st.integers(2, 25), z=st.integers(2, 6), c=st.integers(2, 5))
@settings(max_examples=30, deadline=None)
def test_leep_is_invariant_to_permuting_source_classes_samples_and_target_classes(seed, n, z, c):
    rng = np.random.default_rng(seed)
    probs, labels = torch.tensor(_rand_probs(rng, n, z)), torch.tensor(rng.integers(0, c, size=n))
    base = leep(probs, labels)
    assert leep(probs[:, torch.tensor(rng.permutation(z))], labels) == pytest.approx(base, abs=1e-12)
    order = torch.tensor(rng.permutation(n))
    assert leep(probs[order], labels[order]) == pytest.approx(base, abs=1e-12)
    relabel = torch.tensor(rng.permutation(c))
    assert leep(probs, relabel[labels]) == pytest.approx(base, abs=1e-12)


def test_leep_with_a_source_class_never_predicted_has_no_nan_and_ignores_it():
    rng = np.random.default_rng(3)
    probs = _rand_probs(rng, 10, 3)
    labels = torch.tensor(rng.integers(0, 2, size=10))
    padded = np.concatenate([probs[:, :1], np.zeros((10, 1)), probs[:, 1:]], axis=1)  # P(z=1) = 0
    score = leep(torch.tensor(padded), labels)
    assert math.isfinite(score)
    assert score == pytest.approx(leep(torch.tensor(probs), labels), abs=1e-12)
    assert score == pytest.approx(leep_loop(padded.tolist(), labels.tolist()), abs=1e-12)


def test_leep_is_finite_at_the_edges_of_float_arithmetic():
    labels = torch.tensor([0, 1, 0, 1])
    tiny = torch.tensor([[1 - 1e-300, 1e-300], [1e-300, 1 - 1e-300], [0.5, 0.5], [1.0, 0.0]], dtype=torch.float64)
    assert math.isfinite(leep(tiny, labels))
    hard = torch.softmax(torch.tensor([[300.0, -300.0], [-300.0, 300.0], [300.0, -300.0], [0.0, 0.0]]), 1)
    assert math.isfinite(leep(hard, labels))


# ----------------------------------------------------------------------------------------------------------
# MS-LEEP and E-LEEP
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_ms_leep_and_e_leep_match_the_loop_references(seed):
    rng = np.random.default_rng(seed)
    n, c = 9, 3
    members = [_rand_probs(rng, n, z) for z in (2, 3, 2)[: 2 + seed % 2]]
    labels = rng.integers(0, c, size=n)
    tensors = [torch.tensor(p) for p in members]
    lists = [p.tolist() for p in members]
    assert ms_leep(tensors, torch.tensor(labels)) == pytest.approx(ms_leep_loop(lists, labels.tolist()), abs=1e-12)
    assert e_leep(tensors, torch.tensor(labels)) == pytest.approx(e_leep_loop(lists, labels.tolist()), abs=1e-12)


@given(seed=st.integers(0, 10**6), n=st.integers(1, 20), z=st.integers(2, 5))
@settings(max_examples=25, deadline=None)
def test_one_member_ms_leep_and_e_leep_are_leep(seed, n, z):
    rng = np.random.default_rng(seed)
    probs, labels = torch.tensor(_rand_probs(rng, n, z)), torch.tensor(rng.integers(0, 3, size=n))
    ref = leep(probs, labels)
    assert ms_leep([probs], labels) == pytest.approx(ref, abs=1e-12)
    assert e_leep([probs], labels) == pytest.approx(ref, abs=1e-12)
    assert e_leep([probs, probs, probs], labels) == pytest.approx(ref, abs=1e-12)  # K copies: the same average
    assert e_leep(probs[None], labels) == pytest.approx(ref, abs=1e-12)  # a (K, N, Z) tensor


@given(seed=st.integers(0, 10**6), n=st.integers(2, 15))
@settings(max_examples=25, deadline=None)
def test_e_leep_is_leep_of_the_concatenated_outputs_and_ms_leep_ignores_the_members_order(seed, n):
    rng = np.random.default_rng(seed)
    members = [torch.tensor(_rand_probs(rng, n, z)) for z in (2, 4, 3)]
    labels = torch.tensor(rng.integers(0, 3, size=n))
    concatenated = torch.cat(members, dim=1) / 3
    assert e_leep(members, labels) == pytest.approx(leep(concatenated, labels), abs=1e-12)
    assert ms_leep(members[::-1], labels) == pytest.approx(ms_leep(members, labels), abs=1e-12)


def test_ms_leep_with_an_uninformative_member_is_the_other_members_leep():
    rng = np.random.default_rng(4)
    a = torch.tensor(_rand_probs(rng, 12, 3))
    labels = torch.tensor(rng.integers(0, 3, size=12))
    assert ms_leep([a, torch.full((12, 5), 0.2, dtype=torch.float64)], labels) == pytest.approx(
        leep(a, labels), abs=1e-12
    )


# ----------------------------------------------------------------------------------------------------------
# OSBORN
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("seed", "n"), [(0, 2), (1, 4), (2, 5), (3, 6)])
def test_osborn_domain_term_is_the_exact_transport_by_brute_force(seed, n):
    fs, ft, probs, y = _random_pool(seed, m=1, n_s=n, n_t=n)
    terms = osborn(fs, ft, probs, y, team=[0])
    ref, _ = ot_brute(fs[0].tolist(), ft[0].tolist())
    assert terms.domain == pytest.approx(ref, abs=1e-12)
    assert terms.member_domain == (terms.domain,)


@pytest.mark.parametrize(("n_s", "n_t"), [(2, 3), (3, 2), (1, 4)])
def test_osborn_domain_term_between_sets_of_different_sizes_is_the_replicated_brute_force(n_s, n_t):
    # uniform weights on n_s and on n_t points are uniform weights on L = lcm(n_s, n_t) replicated points, where the
    # exact transport is an assignment: a brute force over L! permutations checks the linear programme
    fs, ft, probs, y = _random_pool(5, m=1, n_s=n_s, n_t=n_t)
    big = math.lcm(n_s, n_t)
    a = [row for row in fs[0].tolist() for _ in range(big // n_s)]
    b = [row for row in ft[0].tolist() for _ in range(big // n_t)]
    assert osborn(fs, ft, probs, y, team=[0]).domain == pytest.approx(ot_brute(a, b)[0], abs=1e-9)


def test_osborn_task_term_is_the_conditional_entropy_of_the_leep_joint():
    fs, ft, probs, y = _random_pool(6, m=2, n_t=7)
    terms = osborn(fs, ft, probs, y, team=[1, 0])
    for position, m in enumerate((1, 0)):
        joint, _ = _joint_loop(probs[m].tolist(), y.tolist())
        assert terms.member_task[position] == pytest.approx(cond_entropy_loop(joint), abs=1e-12)
    assert terms.task == pytest.approx(sum(terms.member_task), abs=1e-12)


def test_osborn_task_term_with_source_labels_reads_the_joint_off_the_optimal_coupling():
    fs, ft, probs, y = _random_pool(7, m=1, n_s=6, n_t=6, z=3)
    source_labels = [torch.tensor([0, 1, 2, 0, 1, 2])]
    terms = osborn(fs, ft, probs, y, team=[0], source_labels=source_labels)
    _, perm = ot_brute(fs[0].tolist(), ft[0].tolist())  # unique for continuous random features
    joint = {}
    for i, j in enumerate(perm):
        key = (int(y[j]), int(source_labels[0][i]))
        joint[key] = joint.get(key, 0.0) + 1 / 6
    assert terms.task == pytest.approx(cond_entropy_loop(joint), abs=1e-12)


def test_osborn_cohesion_is_the_mean_total_variation_between_members_predictions():
    fs, ft, probs, y = _random_pool(8, m=3, n_t=6)
    labels = y.tolist()
    classes = range(max(labels) + 1)
    lists = [p.tolist() for p in probs]
    ref = 0.0
    for a, b in itertools.combinations(range(3), 2):
        tv = [
            0.5 * sum(abs(_eep_loop(lists[a], labels, i, c) - _eep_loop(lists[b], labels, i, c)) for c in classes)
            for i in range(6)
        ]
        ref += sum(tv) / 6
    terms = osborn(fs, ft, probs, y, team=[0, 1, 2], weights=(0.5, 2.0, 3.0))
    assert terms.cohesion == pytest.approx(ref, abs=1e-12)
    assert terms.score == pytest.approx(-(0.5 * terms.domain + 2.0 * terms.task + 3.0 * terms.cohesion), abs=1e-12)
    assert osborn(fs, ft, probs, y, team=[2]).cohesion == 0.0  # one member agrees with itself
    identical = osborn(fs, ft, [probs[0]] * 3, y, team=[0, 1, 2])
    assert identical.cohesion == pytest.approx(0.0, abs=1e-15)


def test_osborn_does_not_depend_on_the_order_of_the_team():
    fs, ft, probs, y = _random_pool(9, m=3)
    a, b = osborn(fs, ft, probs, y, team=[0, 2, 1]), osborn(fs, ft, probs, y, team=[1, 0, 2])
    assert (a.domain, a.task, a.cohesion) == pytest.approx((b.domain, b.task, b.cohesion), abs=1e-12)


def test_osborn_score_is_submodular_on_every_pair_of_nested_teams():
    fs, ft, probs, y = _random_pool(10, m=4, n_t=6)
    pool = range(4)
    f = {(): 0.0}
    for r in range(1, 5):
        for team in itertools.combinations(pool, r):
            f[team] = osborn(fs, ft, probs, y, team=list(team)).score
    checked = 0
    for b_size in range(0, 4):
        for b in itertools.combinations(pool, b_size):
            for a_size in range(0, b_size + 1):
                for a in itertools.combinations(b, a_size):
                    for x in set(pool) - set(b):
                        gain_a = f[tuple(sorted(a + (x,)))] - f[a]
                        gain_b = f[tuple(sorted(b + (x,)))] - f[b]
                        assert gain_a >= gain_b - 1e-12
                        checked += 1
    assert checked > 50


def test_osborn_prefers_the_source_closer_to_the_target():
    rng = np.random.default_rng(11)
    ft = torch.tensor(rng.normal(size=(6, 2)))
    near, far = ft + 0.01 * torch.tensor(rng.normal(size=(6, 2))), ft + 5.0
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    same_probs = torch.nn.functional.one_hot(labels, 3).double()
    terms = [osborn([near, far], [ft, ft], [same_probs, same_probs], labels, team=[m]) for m in (0, 1)]
    assert terms[0].score > terms[1].score
    assert terms[0].task == pytest.approx(0.0, abs=1e-15)  # the source's labels determine the target's


# ----------------------------------------------------------------------------------------------------------
# greedy team selection
# ----------------------------------------------------------------------------------------------------------


@given(
    scores=st.lists(st.floats(-10, 10, allow_nan=False, allow_infinity=False), min_size=1, max_size=8),
    data=st.data(),
)
@settings(max_examples=40, deadline=None)
def test_greedy_selection_of_a_modular_objective_is_the_brute_force_best_team(scores, data):
    k = data.draw(st.integers(1, len(scores)))
    result = select_team(scores, pool_size=len(scores), k=k)
    best = max(math.fsum(scores[i] for i in team) for team in itertools.combinations(range(len(scores)), k))
    assert math.fsum(scores[i] for i in result.team) == pytest.approx(best, abs=1e-9)
    assert len(set(result.team)) == k
    assert result.scores[-1] == pytest.approx(best, abs=1e-9)
    assert math.fsum(result.gains) == pytest.approx(result.scores[-1], abs=1e-9)
    as_callable = select_team(lambda team: math.fsum(scores[i] for i in team), pool_size=len(scores), k=k)
    assert as_callable.team == result.team


def test_greedy_selection_breaks_ties_by_the_lowest_index_and_follows_the_objective():
    assert select_team([1.0, 1.0, 1.0], pool_size=3, k=2).team == (0, 1)
    fs, ft, probs, y = _random_pool(12, m=4, n_t=6)

    def objective(team):
        return osborn(fs, ft, probs, y, team=list(team)).score

    result = select_team(objective, pool_size=4, k=3)
    assert result.team[0] == max(range(4), key=lambda m: (objective((m,)), -m))
    for i in range(3):
        assert result.scores[i] == pytest.approx(objective(result.team[: i + 1]), abs=1e-12)
    # submodular: the marginal gains of the greedy path never grow
    assert all(later <= earlier + 1e-12 for earlier, later in zip(result.gains, result.gains[1:], strict=False))


# ----------------------------------------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------------------------------------

_P = torch.tensor([[0.7, 0.3], [0.2, 0.8], [0.5, 0.5]], dtype=torch.float64)
_Y = torch.tensor([0, 1, 1])


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: leep(_P[0], _Y), ValueError, "source_probs must have shape"),
        (lambda: leep(_P[:, :1], _Y), ValueError, "source_probs"),
        (lambda: leep(_P * 2, _Y), ValueError, "source_probs"),
        (lambda: leep(torch.tensor([[float("nan"), 1.0]] * 3), _Y), ValueError, "source_probs"),
        (lambda: leep("probs", _Y), TypeError, "source_probs"),
        (lambda: leep(_P, torch.tensor([0, -1, 1])), ValueError, "target_labels must be target class indices >= 0"),
        (lambda: leep(_P, torch.tensor([0.0, 0.5, 1.0])), ValueError, "target_labels"),
        (lambda: leep(_P, torch.tensor([0, 1])), ValueError, "target_labels must have shape"),
        (lambda: e_leep([], _Y), ValueError, "source_probs_list"),
        (lambda: e_leep("ab", _Y), TypeError, "source_probs_list"),
        (lambda: e_leep([_P, _P[:2]], _Y), ValueError, r"source_probs_list\[1\]"),
        (lambda: ms_leep([_P, _P * 3], _Y), ValueError, r"source_probs_list\[1\]"),
        (
            lambda: ms_leep([torch.full((3, 500), 1 / 500)] * 3, _Y),
            ValueError,
            "source_probs_list is too large for MS-LEEP.*e_leep",
        ),
    ],
)
def test_bad_input_to_the_leep_family_names_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


def _pool():
    return _random_pool(13, m=2, n_s=4, n_t=3)


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (lambda a: {**a, "team": []}, ValueError, "team"),
        (lambda a: {**a, "team": [0, 0]}, ValueError, "team must name each source model at most once"),
        (lambda a: {**a, "team": [2]}, ValueError, r"team\[0\]"),
        (lambda a: {**a, "team": [True]}, TypeError, r"team\[0\]"),
        (lambda a: {**a, "weights": (1.0, -1.0, 1.0)}, ValueError, "weights"),
        (lambda a: {**a, "weights": (1.0, 1.0)}, ValueError, "weights"),
        (lambda a: {**a, "features_source": a["features_source"][:1]}, ValueError, "features_source must hold"),
        (
            lambda a: {**a, "features_source": [a["features_source"][0][:, :2], a["features_source"][1]]},
            ValueError,
            r"features_source\[0\] and features_target\[0\] must have the same feature dimension",
        ),
        (
            lambda a: {**a, "features_target": [a["features_target"][0][:2], a["features_target"][1]]},
            ValueError,
            r"features_target\[0\] must have one row per target image",
        ),
        (
            lambda a: {**a, "features_target": [a["features_target"][0] * float("nan"), a["features_target"][1]]},
            ValueError,
            r"features_target\[0\] must be finite",
        ),
        (
            lambda a: {**a, "source_labels": [torch.tensor([0, 1, 2, 9]), torch.tensor([0, 1, 2, 3])]},
            ValueError,
            r"source_labels\[0\]",
        ),
        (lambda a: {**a, "target_labels": torch.tensor([0, 1])}, ValueError, "target_labels"),
        (lambda a: {**a, "weights": (1e308, 1e308, 1e308)}, ValueError, "weights=.*overflows"),
        (
            lambda a: {**a, "features_source": [a["features_source"][0] * 1e300, a["features_source"][1]]},
            ValueError,
            r"distances between features_source\[0\] and features_target\[0\] is not finite",
        ),
    ],
)
def test_bad_input_to_osborn_names_the_argument(change, error, match):
    fs, ft, probs, y = _pool()
    args = {
        "features_source": fs,
        "features_target": ft,
        "source_probs_list": probs,
        "target_labels": y,
        "team": [0, 1],
    }
    osborn(**args)  # the unchanged call is fine
    with pytest.raises(error, match=match):
        osborn(**change(args))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: select_team([1.0, 2.0], pool_size=2, k=3), ValueError, "k must be at most pool_size"),
        (lambda: select_team([1.0, 2.0], pool_size=2, k=0), ValueError, "k must be in"),
        (lambda: select_team([1.0, 2.0], pool_size=True, k=1), TypeError, "pool_size"),
        (lambda: select_team([1.0, 2.0, 3.0], pool_size=2, k=1), ValueError, "objective must hold one score"),
        (lambda: select_team([1.0, float("nan")], pool_size=2, k=1), ValueError, "objective"),
        (lambda: select_team("12", pool_size=2, k=1), TypeError, "objective"),
        (lambda: select_team(lambda team: float("nan"), pool_size=2, k=1), ValueError, "objective"),
        (lambda: select_team(lambda team: "high", pool_size=2, k=1), TypeError, "objective"),
    ],
)
def test_bad_input_to_select_team_names_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()
