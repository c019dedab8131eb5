"""Both losses against direct computations of the paper's formulas, and their invariants."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stylestudy.engine.neural.losses import BaselineLoss, LossWeights, NormalizedLoss, Targets, gram

C_LAYERS = ["relu4_2"]
S_LAYERS = ["relu1_2", "relu2_2"]
SHAPES = {"relu1_2": (4, 6, 5), "relu2_2": (8, 3, 3), "relu4_2": (6, 2, 2)}  # (C, H, W)


def _feats(seed: int, batch: int = 1, scale: float = 1.0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: scale * torch.rand((batch, *s), generator=g, dtype=torch.float64) for k, s in SHAPES.items()}


def _targets(o, s, hw=(12, 10)) -> Targets:
    return Targets.from_features({j: o[j] for j in C_LAYERS}, {j: s[j] for j in S_LAYERS}, hw)


def _weights(lambda_os=0.5, content=(1.0,), style=(0.2, 0.7)) -> LossWeights:
    return LossWeights(lambda_os, dict(zip(C_LAYERS, content)), dict(zip(S_LAYERS, style)))


def _np_gram(f: np.ndarray) -> np.ndarray:
    c, h, w = f.shape
    phi = f.reshape(c, h * w).T  # (H*W) x C, as in the paper
    return phi.T @ phi


def test_gram_is_phi_transpose_phi_not_divided():
    f = _feats(0)["relu1_2"]
    np.testing.assert_allclose(gram(f)[0].numpy(), _np_gram(f[0].numpy()), rtol=1e-12)


def test_baseline_matches_equations_2_to_5():
    o, s, x = _feats(1), _feats(2), _feats(3)
    w = _weights()
    total, partials = BaselineLoss(_targets(o, s), w)(x)
    lo = sum(0.5 * w.content[j] * ((o[j][0] - x[j][0]).numpy() ** 2).sum() for j in C_LAYERS)
    ls = 0.0
    for j in S_LAYERS:
        c, h, wd = SHAPES[j]
        diff = _np_gram(s[j][0].numpy()) - _np_gram(x[j][0].numpy())
        part = (1 / (2 * h * wd * c)) ** 2 * (diff**2).sum()
        assert partials.style[j].item() == pytest.approx(part, rel=1e-6)
        ls += w.style[j] * part
    assert total.item() == pytest.approx(w.lambda_os * lo + ls, rel=1e-6)


def test_normalized_matches_equations_11_to_14():
    o, s, x = _feats(1), _feats(2), _feats(3)
    w = _weights()
    hw = (12, 10)
    total, _ = NormalizedLoss(_targets(o, s, hw), w)(x)
    pixels = hw[0] * hw[1]
    lo = sum(
        w.content[j] / sum(w.content.values()) * ((o[j][0] - x[j][0]).numpy() ** 2).sum() / (o[j][0].numpy() ** 2).sum()
        for j in C_LAYERS
    )
    ls = 0.0
    for j in S_LAYERS:
        gs, gx = _np_gram(s[j][0].numpy()), _np_gram(x[j][0].numpy())
        ls += w.style[j] / sum(w.style.values()) * ((gs - gx) ** 2).sum() / (gs**2).sum()  # lambdaR over S, not C
    assert total.item() == pytest.approx(w.lambda_os * pixels * lo + pixels * ls, rel=1e-6)


def test_scaling_style_weights_leaves_normalized_unchanged_but_scales_baseline():
    o, s, x = _feats(1), _feats(2), _feats(3)
    t = _targets(o, s)
    base1, base10 = BaselineLoss(t, _weights(style=(0.2, 0.7)))(x)[0], BaselineLoss(t, _weights(style=(2.0, 7.0)))(x)[0]
    norm1, norm10 = NormalizedLoss(t, _weights(style=(0.2, 0.7)))(x)[0], NormalizedLoss(t, _weights(style=(2.0, 7.0)))(x)[0]
    assert norm10.item() == pytest.approx(norm1.item(), rel=1e-9)
    # Baseline: only the style part scales by 10.
    t_zero_style = BaselineLoss(t, _weights(style=(0.0, 0.0)))(x)[0]
    assert (base10 - t_zero_style).item() == pytest.approx(10 * (base1 - t_zero_style).item(), rel=1e-9)


def test_normalized_partials_invariant_to_feature_scale_baseline_not():
    """E_o and E_G divide out the layer's output power (the paper's motivation)."""
    o, s, x = _feats(1), _feats(2), _feats(3)
    k = 7.0
    scaled = lambda f: {j: k * v for j, v in f.items()}  # noqa: E731
    p1 = NormalizedLoss(_targets(o, s), _weights()).partials(x)
    pk = NormalizedLoss(_targets(scaled(o), scaled(s)), _weights()).partials(scaled(x))
    b1 = BaselineLoss(_targets(o, s), _weights()).partials(x)
    bk = BaselineLoss(_targets(scaled(o), scaled(s)), _weights()).partials(scaled(x))
    for j in S_LAYERS:
        assert pk.style[j].item() == pytest.approx(p1.style[j].item(), rel=1e-9)
        assert bk.style[j].item() == pytest.approx(k**4 * b1.style[j].item(), rel=1e-9)
    assert pk.content["relu4_2"].item() == pytest.approx(p1.content["relu4_2"].item(), rel=1e-9)


@pytest.mark.parametrize("cls", [BaselineLoss, NormalizedLoss])
def test_partials_zero_at_targets(cls):
    o, s = _feats(1), _feats(2)
    content_at_o = cls(_targets(o, s), _weights()).partials(o)
    style_at_s = cls(_targets(o, s), _weights()).partials(s)
    assert content_at_o.content["relu4_2"].item() == 0.0
    for j in S_LAYERS:
        assert style_at_s.style[j].item() == pytest.approx(0.0, abs=1e-18)


def test_nominal_scale_w_is_object_pixel_count():
    o, s, x = _feats(1), _feats(2), _feats(3)
    small = NormalizedLoss(_targets(o, s, (10, 10)), _weights())(x)[0]
    large = NormalizedLoss(_targets(o, s, (20, 30)), _weights())(x)[0]
    assert large.item() == pytest.approx(6 * small.item(), rel=1e-9)
    explicit = NormalizedLoss(_targets(o, s, (20, 30)), _weights(), nominal_scale=1.0)(x)[0]
    assert explicit.item() == pytest.approx(small.item() / 100, rel=1e-9)


@pytest.mark.parametrize("cls", [BaselineLoss, NormalizedLoss])
def test_batch_of_problems_equals_problems_one_by_one(cls):
    """Each problem in a batch keeps its own targets and weights."""
    os_, ss, xs = [_feats(10 + i) for i in range(3)], [_feats(20 + i) for i in range(3)], [_feats(30 + i) for i in range(3)]
    ws = [_weights(lambda_os=lam, style=st) for lam, st in ((1.0, (0.2, 0.2)), (1e-3, (20.0, 0.2)), (10.0, (1.0, 3.0)))]
    singles = [cls(_targets(o, s), w)(x)[0].item() for o, s, x, w in zip(os_, ss, xs, ws)]
    stacked = Targets.stack([_targets(o, s) for o, s in zip(os_, ss)])
    batch_x = {j: torch.cat([x[j] for x in xs]) for j in SHAPES}
    batched = cls(stacked, ws)(batch_x)[0]
    np.testing.assert_allclose(batched.numpy(), singles, rtol=1e-12)


def test_low_precision_features_give_float32_losses():
    o, s, x = _feats(1), _feats(2), _feats(3)
    half = {j: v.to(torch.bfloat16) for j, v in x.items()}
    loss = NormalizedLoss(_targets(o, s), _weights())
    total, partials = loss(half)
    assert total.dtype == torch.float64 or total.dtype == torch.float32
    assert gram(half["relu1_2"]).dtype == torch.float32
    assert total.item() == pytest.approx(loss(x)[0].item(), rel=0.05)


def test_mismatched_layer_weights_rejected():
    o, s = _feats(1), _feats(2)
    with pytest.raises(ValueError, match="layer weights"):
        BaselineLoss(_targets(o, s), LossWeights(1.0, {"relu4_2": 1.0}, {"relu1_2": 1.0}))
