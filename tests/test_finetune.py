"""Fine-tuning recipes: the loss pieces against obviously-correct references, determinism, bad input."""

import pytest
import torch
import torch.nn.functional as F

from ensemble_lab.finetune import FINE_TUNE, fine_tune, mixup_batch, shift_augment


def _data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    x = (torch.rand(3, 1, 4, 4, generator=g)[y] + 0.1 * torch.randn(n, 1, 4, 4, generator=g)).clamp(0, 1)
    return x, y


def _model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))


def test_shift_augment_matches_a_padded_crop_reference():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(20, 2, 5, 6)
    out = shift_augment(x, g)
    d = torch.randint(-1, 2, (20, 2), generator=torch.Generator().manual_seed(3))
    for i in range(20):
        dy, dx = int(d[i, 0]), int(d[i, 1])
        ref = torch.zeros_like(x[i])
        src = x[i][:, max(0, -dy) : 5 - max(0, dy), max(0, -dx) : 6 - max(0, dx)]
        ref[:, max(0, dy) : max(0, dy) + src.shape[1], max(0, dx) : max(0, dx) + src.shape[2]] = src
        torch.testing.assert_close(out[i], ref)


def test_mixup_batch_blends_images_and_labels_with_one_lambda():
    x, y = _data(16)
    g = torch.Generator().manual_seed(0)
    mixed, ya, yb, lam = mixup_batch(x, y, 0.4, g)
    assert 0.0 <= lam <= 1.0
    assert torch.equal(ya, y)
    perm = [int(torch.nonzero(y == yb[i]).flatten()[0]) for i in range(16)]  # a source with label yb[i]
    assert all(int(y[p]) == int(yb[i]) for i, p in enumerate(perm))
    # the blend: mixed - lam * x is (1 - lam) times some row of x, namely the one whose label is yb
    rest = (mixed - lam * x) / (1 - lam)
    for i in range(16):
        assert any(torch.allclose(rest[i], x[j], atol=1e-5) and int(y[j]) == int(yb[i]) for j in range(16))
    with pytest.raises(ValueError, match="alpha"):
        mixup_batch(x, y, 0.0, g)


def test_fine_tune_is_deterministic_and_leaves_the_model_alone():
    x, y = _data()
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    recipe = FINE_TUNE.replace(lr=1e-2, epochs=2, batch_size=16, mixup=0.4, label_smoothing=0.1, augment=True)
    a, b = fine_tune(model, (x, y), recipe), fine_tune(model, (x, y), recipe)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
        torch.testing.assert_close(model.state_dict()[k], before[k], rtol=0, atol=0)
    c = fine_tune(model, (x, y), recipe.replace(seed=1))
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_plain_fine_tune_equals_a_reference_loop():
    """No mixup, no augmentation: AdamW + cosine + cross-entropy with label smoothing, written out by hand."""
    x, y = _data()
    recipe = FINE_TUNE.replace(lr=5e-3, weight_decay=0.05, epochs=2, batch_size=16, label_smoothing=0.2, seed=4)
    got = fine_tune(_model(), (x, y), recipe)
    net = _model()
    opt = torch.optim.AdamW(net.parameters(), lr=5e-3, weight_decay=0.05)
    steps = 2 * 4
    g = torch.Generator().manual_seed(4)
    step = 0
    for _ in range(2):
        order = torch.randperm(64, generator=g)
        for s in range(0, 64, 16):
            idx = order[s : s + 16]
            logp = net(x[idx]).log_softmax(-1)
            target = torch.full((16, 3), 0.2 / 3).scatter_(1, y[idx, None], 1 - 0.2 + 0.2 / 3)
            loss = -(target * logp).sum(-1).mean()
            opt.zero_grad()
            loss.backward()
            for group in opt.param_groups:
                group["lr"] = 5e-3 * 0.5 * (1 + torch.cos(torch.tensor(torch.pi * step / steps))).item()
            opt.step()
            step += 1
    for k, v in net.state_dict().items():
        torch.testing.assert_close(got[k], v, rtol=1e-4, atol=1e-5)


def test_label_smoothing_lowers_confidence():
    x, y = _data(128)
    base = FINE_TUNE.replace(lr=3e-2, epochs=15, batch_size=32)
    m = _model()
    conf = {}
    for eps in (0.0, 0.3):
        m.load_state_dict(fine_tune(_model(), (x, y), base.replace(label_smoothing=eps)))
        with torch.no_grad():
            conf[eps] = float(F.softmax(m(x), -1).max(-1).values.mean())
    assert conf[0.3] < conf[0.0] - 0.05


def test_fine_tune_bad_types():
    with pytest.raises(TypeError, match="model"):
        fine_tune("not a model", _data())
    with pytest.raises(TypeError, match="recipe"):
        fine_tune(_model(), _data(), recipe={"lr": 1e-3})
    x, y = _data()
    with pytest.raises(ValueError, match="labels"):
        fine_tune(_model(), (x, y[:-1]))


# bad-input regressions ------------------------------------------------------------------------------------
def test_fine_tune_accepts_numpy_pairs_and_refuses_non_finite_ones():
    x, y = _data()
    recipe = FINE_TUNE.replace(epochs=1, batch_size=16)
    a, b = fine_tune(_model(), (x, y), recipe), fine_tune(_model(), (x.numpy(), y.numpy()), recipe)
    assert all(torch.equal(v, b[k]) for k, v in a.items())
    bad = x.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="train.images must be finite"):
        fine_tune(_model(), (bad, y), recipe)
    for huge in (dict(lr=1e308), dict(weight_decay=1e308)):
        with pytest.raises(ValueError, match="recipe.lr"):
            fine_tune(_model(), (x, y), recipe.replace(**huge))
    with pytest.raises(ValueError, match="recipe.epochs"):
        fine_tune(_model(), (x, y), recipe.replace(epochs=2**64))
    with pytest.raises(ValueError, match="model must give"):
        fine_tune(_model(), (x, y + 3), recipe)  # labels up to 5, the model has 3 outputs


def test_mixup_and_shift_check_their_arguments():
    x, y = _data(8)
    g = torch.Generator().manual_seed(0)
    for bad_gen in (None, 0, "gen"):
        with pytest.raises(TypeError, match="generator"):
            mixup_batch(x, y, 0.4, bad_gen)
        with pytest.raises(TypeError, match="generator"):
            shift_augment(x, bad_gen)
    with pytest.raises(ValueError, match="labels must have shape"):
        mixup_batch(x, y[:-1], 0.4, g)
    with pytest.raises(TypeError, match="labels"):
        mixup_batch(x, y.double() + 0.5, 0.4, g)
    nan = x.clone()
    nan[0, 0, 0, 0] = float("nan")
    for call in (lambda: mixup_batch(nan, y, 0.4, g), lambda: shift_augment(nan, g)):
        with pytest.raises(ValueError, match="images must be finite"):
            call()
    with pytest.raises(ValueError, match="images must have shape"):
        shift_augment(x[0], g)
    a = shift_augment(x, torch.Generator().manual_seed(1))
    assert torch.equal(shift_augment(x.numpy(), torch.Generator().manual_seed(1)), a)
