"""The paper's two losses: the Gatys baseline (Eq. 2-5) and the normalized loss (Eq. 11-14).

Both share one interface.  ``partials(features)`` returns each layer's *unweighted* partial
loss (as defined for ``stylestudy inspect``), ``total(partials)`` weights and sums them.  Every
quantity carries a leading batch dimension, so B independent problems (each with its own
targets and weights) are evaluated in one forward/backward.

Grams and losses are computed in float32 (or wider, if the features already are) even when the
feature extractor runs in lower precision.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

Features = dict[str, torch.Tensor]


def gram(features: torch.Tensor) -> torch.Tensor:
    """G = Phi^T Phi for Phi of shape (H*W, C): (B, C, H, W) -> (B, C, C), NOT divided by H*W."""
    f = features if features.dtype in (torch.float32, torch.float64) else features.float()
    b, c, h, w = f.shape
    flat = f.reshape(b, c, h * w)
    return flat @ flat.transpose(1, 2)


def squared_error(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-sample sum of squared differences in float32 or wider: (B, ...) -> (B,)."""
    dtype = torch.promote_types(torch.promote_types(a.dtype, b.dtype), torch.float32)
    return (a.to(dtype) - b.to(dtype)).pow(2).flatten(1).sum(1)


@dataclass
class LossWeights:
    """lambda_os, lambda_o(j) and lambda_s(j); the per-layer weights are relative for 'normalized'."""

    lambda_os: float
    content: dict[str, float]
    style: dict[str, float]


@dataclass
class Partials:
    """Unweighted per-layer partial losses, each a (B,) tensor."""

    content: dict[str, torch.Tensor] = field(default_factory=dict)
    style: dict[str, torch.Tensor] = field(default_factory=dict)

    def select(self, index: int) -> "Partials":
        """Problem ``index`` alone, detached, keeping a batch dimension of 1."""
        pick = lambda d: {k: v[index : index + 1].detach() for k, v in d.items()}  # noqa: E731
        return Partials(pick(self.content), pick(self.style))

    def detached(self) -> dict[str, dict[str, list[float]]]:
        """Plain floats per sample, for JSON sidecars and traces."""
        return {
            "content": {k: v.detach().double().cpu().tolist() for k, v in self.content.items()},
            "style": {k: v.detach().double().cpu().tolist() for k, v in self.style.items()},
        }


@dataclass
class Targets:
    """What the loss compares x with, computed once: phi_j(o) for C, G(phi_j(s)) for S."""

    content: Features
    style_grams: Features
    object_pixels: int  # H_o * W_o of the (resized) object image: the normalized loss's w

    @classmethod
    def from_features(cls, content_feats: Features, style_feats: Features, object_hw: tuple[int, int]) -> "Targets":
        with torch.no_grad():
            return cls(
                content={k: v.detach() for k, v in content_feats.items()},
                style_grams={k: gram(v).detach() for k, v in style_feats.items()},
                object_pixels=object_hw[0] * object_hw[1],
            )

    def select(self, indices: list[int]) -> "Targets":
        """The targets of a subset of the problems."""
        return Targets({k: v[indices] for k, v in self.content.items()},
                       {k: v[indices] for k, v in self.style_grams.items()}, self.object_pixels)

    @classmethod
    def stack(cls, items: list["Targets"]) -> "Targets":
        """Concatenate single-problem targets along the batch dimension (equal shapes)."""
        return cls(
            content={k: torch.cat([t.content[k] for t in items]) for k in items[0].content},
            style_grams={k: torch.cat([t.style_grams[k] for t in items]) for k in items[0].style_grams},
            object_pixels=items[0].object_pixels,
        )


class StyleTransferLoss:
    """Common interface; subclasses define the partials and how they are weighted."""

    method: str = ""

    def __init__(self, targets: Targets, weights: LossWeights | list[LossWeights]) -> None:
        self.targets = targets
        self.weights = weights if isinstance(weights, list) else [weights]
        self.content_layers = list(targets.content)
        self.style_layers = list(targets.style_grams)
        for w in self.weights:
            if set(w.content) != set(self.content_layers) or set(w.style) != set(self.style_layers):
                raise ValueError("layer weights must name exactly the content and style layers of the targets")

        device = next(iter(targets.style_grams.values())).device
        # One value per problem (or one for all), broadcast against the (B,) partials.  The
        # per-layer coefficients are computed once, in doubles (they are (B,) vectors: cheap).
        dtype = torch.float32 if device.type == "mps" else torch.float64  # MPS has no float64
        column = lambda values: torch.tensor(values, dtype=dtype, device=device)  # noqa: E731
        self.lambda_os = column([w.lambda_os for w in self.weights])
        self.content_coef = {j: column([self.layer_coefficient(w.content, j) for w in self.weights])
                             for j in self.content_layers}
        self.style_coef = {j: column([self.layer_coefficient(w.style, j) for w in self.weights])
                           for j in self.style_layers}

    @staticmethod
    def layer_coefficient(layer_weights: dict[str, float], layer: str) -> float:
        """What multiplies layer j's partial loss."""
        raise NotImplementedError

    @property
    def layers(self) -> list[str]:
        return list(dict.fromkeys(self.content_layers + self.style_layers))

    def partials(self, feats: Features) -> Partials:
        raise NotImplementedError

    def total(self, partials: Partials) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, feats: Features) -> tuple[torch.Tensor, Partials]:
        """(per-sample total loss (B,), partials)."""
        partials = self.partials(feats)
        return self.total(partials), partials

    def select(self, indices: list[int]) -> "StyleTransferLoss":
        """The same loss over a subset of the problems (targets and weights)."""
        weights = [self.weights[i] for i in indices] if len(self.weights) > 1 else self.weights
        return self._with(self.targets.select(indices), weights)

    def _with(self, targets: Targets, weights: list[LossWeights]) -> "StyleTransferLoss":
        return type(self)(targets, weights)


class BaselineLoss(StyleTransferLoss):
    """Gatys et al. (Eq. 2-5).

    L_o = sum_j 1/2 lambda_o(j) ||phi_j(o) - phi_j(x)||^2
    L_s = sum_j (1 / (2 H_j W_j C_j))^2 lambda_s(j) ||G_s - G_x||_F^2  (H_j, W_j, C_j of phi_j(x))
    L   = lambda_os L_o + L_s
    """

    method = "baseline"

    def partials(self, feats: Features) -> Partials:
        partials = Partials()
        for j in self.content_layers:
            partials.content[j] = 0.5 * squared_error(feats[j], self.targets.content[j])
        for j in self.style_layers:
            _, c, h, w = feats[j].shape
            partials.style[j] = squared_error(gram(feats[j]), self.targets.style_grams[j]) / float(2 * h * w * c) ** 2
        return partials

    @staticmethod
    def layer_coefficient(layer_weights: dict[str, float], layer: str) -> float:
        return layer_weights[layer]

    def total(self, partials: Partials) -> torch.Tensor:
        content = sum(self.content_coef[j] * partials.content[j] for j in self.content_layers)
        style = sum(self.style_coef[j] * partials.style[j] for j in self.style_layers)
        return self.lambda_os * content + style


class NormalizedLoss(StyleTransferLoss):
    """Choi & Kim (Eq. 11-14).

    L_o = w sum_j lambdaR_o(j) ||phi_j(o) - phi_j(x)||^2 / E_o_j,  E_o_j = sum phi_j(o)^2
    L_s = w sum_j lambdaR_s(j) ||G_s - G_x||_F^2 / E_G_j,        E_G_j = ||G(phi_j(s))||_F^2
    lambdaR = lambda / (sum of lambda over its own set: C for content, S for style; the printed
    Eq. 14 sums over C for style, a typo).  w = H_o * W_o unless ``nominal_scale`` is given.
    L   = lambda_os L_o + L_s
    """

    method = "normalized"

    def __init__(
        self, targets: Targets, weights: LossWeights | list[LossWeights], nominal_scale: float | None = None
    ) -> None:
        super().__init__(targets, weights)
        self.nominal_scale = float(nominal_scale if nominal_scale is not None else targets.object_pixels)
        with torch.no_grad():
            self.content_energy = {j: squared_error(targets.content[j], torch.zeros_like(targets.content[j]))
                                   for j in self.content_layers}
            self.gram_energy = {j: targets.style_grams[j].pow(2).flatten(1).sum(1) for j in self.style_layers}

    def _with(self, targets: Targets, weights: list[LossWeights]) -> "NormalizedLoss":
        return NormalizedLoss(targets, weights, self.nominal_scale)

    def partials(self, feats: Features) -> Partials:
        partials = Partials()
        for j in self.content_layers:
            partials.content[j] = squared_error(feats[j], self.targets.content[j]) / self.content_energy[j]
        for j in self.style_layers:
            partials.style[j] = squared_error(gram(feats[j]), self.targets.style_grams[j]) / self.gram_energy[j]
        return partials

    @staticmethod
    def layer_coefficient(layer_weights: dict[str, float], layer: str) -> float:
        """lambdaR(j) = lambda(j) / sum of lambda over the same set (Eq. 14)."""
        return layer_weights[layer] / sum(layer_weights.values())

    def total(self, partials: Partials) -> torch.Tensor:
        content = sum(self.content_coef[j] * partials.content[j] for j in self.content_layers)
        style = sum(self.style_coef[j] * partials.style[j] for j in self.style_layers)
        return self.nominal_scale * (self.lambda_os * content + style)


METHODS: dict[str, type[StyleTransferLoss]] = {"baseline": BaselineLoss, "normalized": NormalizedLoss}


def make_loss(method: str, targets: Targets, weights: LossWeights | list[LossWeights], **kwargs) -> StyleTransferLoss:
    try:
        cls = METHODS[method]
    except KeyError:
        raise ValueError(f"unknown method {method!r}; use one of {', '.join(METHODS)}") from None
    return cls(targets, weights, **kwargs)
