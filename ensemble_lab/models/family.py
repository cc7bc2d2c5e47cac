"""A family of small image classifiers (MLPs and CNNs) of increasing cost, with exact MAC counts.

Every member of the family maps images shaped ``(N, C, H, W)`` to logits ``(N, n_classes)``.

* ``kind="mlp"``: ``Flatten -> [Linear -> ReLU] * len(widths) -> Linear``; ``widths`` are the hidden sizes.
* ``kind="cnn"``: ``[Conv3x3(same padding) -> ReLU -> MaxPool2d(2)] * len(widths) -> Flatten
  -> [Linear -> ReLU] * len(hidden) -> Linear``; ``widths`` are the conv channel counts.  A pooling layer is
  left out once the feature map is smaller than 2x2 (so 8x8 and 16x16 inputs both work).

Cost is counted in multiply-accumulates (MACs) per sample: a ``Linear(i, o)`` costs ``i * o``; a
``Conv2d`` costs ``out_channels * H_out * W_out * (in_channels / groups) * kh * kw``.  Bias additions,
activations, pooling, flattening and the softmax are *not* counted (they are O(activations), not
O(weights x positions), and are negligible next to the matmuls for these models).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .._validation import MAX_COUNT, check_choice, check_int, check_seed, check_sequence

__all__ = [
    "ModelSpec",
    "FAMILY",
    "get_spec",
    "build_model",
    "macs",
    "member_seed",
    "layer_plan",
]


@dataclass(frozen=True)
class ModelSpec:
    """An architecture of the family (independent of input shape and number of classes).

    name: short identifier, e.g. ``"mlp-m"``.
    kind: ``"mlp"`` or ``"cnn"``.
    widths: hidden sizes (mlp) or conv channels per stage (cnn), each in ``[1, MAX_COUNT]`` (a list, tuple or
        1-d array of ints, numpy ints too; stored as a tuple of python ints).
    hidden: dense hidden sizes after the conv stages (cnn only; must be empty for an mlp).
    kernel_size: conv kernel size (odd, "same" padding, at most ``MAX_COUNT``); ignored by mlps.
    """

    name: str
    kind: str
    widths: tuple[int, ...]
    hidden: tuple[int, ...] = ()
    kernel_size: int = 3

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty string, got {self.name!r}")
        check_choice(self.kind, "kind", ("mlp", "cnn"))
        for field in ("widths", "hidden"):
            items = check_sequence(getattr(self, field), field, what="positive ints", allow_empty=True)
            sizes = tuple(check_int(w, f"{field}[{i}]", minimum=1, maximum=MAX_COUNT) for i, w in enumerate(items))
            object.__setattr__(self, field, sizes)  # numpy ints and lists stored as a tuple of python ints
        if self.kind == "cnn" and not self.widths:
            raise ValueError(f"widths must name at least one conv stage for a cnn, got {self.widths!r}")
        if self.kind == "mlp" and self.hidden:
            raise ValueError(f"hidden is for cnns only (an mlp's hidden sizes are its widths), got {self.hidden!r}")
        k = check_int(self.kernel_size, "kernel_size", minimum=1, maximum=MAX_COUNT)
        if k % 2 == 0:
            raise ValueError(f"kernel_size must be odd (same padding), got {k}")
        object.__setattr__(self, "kernel_size", k)


# Ordered by cost: MACs per sample at input (1, 16, 16) with 10 classes (the distorted-digits default).
# At other input sizes the order can change (conv cost scales with H*W, the first Linear's with C*H*W).
FAMILY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("mlp-xs", "mlp", (16,)),  #                        4,256 MACs
        ModelSpec("mlp-s", "mlp", (64,)),  #                        17,024
        ModelSpec("mlp-m", "mlp", (128, 128)),  #                   50,432
        ModelSpec("cnn-s", "cnn", (8, 16)),  #                      94,720
        ModelSpec("mlp-l", "mlp", (256, 256, 256)),  #             199,168
        ModelSpec("cnn-m", "cnn", (16, 32)),  #                    336,896
        ModelSpec("cnn-l", "cnn", (32, 64), hidden=(128,)),  #   1,385,728
    )
}


def get_spec(spec_or_name: ModelSpec | str) -> ModelSpec:
    """A :class:`ModelSpec` from itself or from its name in :data:`FAMILY`."""
    if isinstance(spec_or_name, ModelSpec):
        return spec_or_name
    if isinstance(spec_or_name, str):
        if spec_or_name not in FAMILY:
            raise ValueError(f"spec must be one of {', '.join(map(repr, FAMILY))} or a ModelSpec; got {spec_or_name!r}")
        return FAMILY[spec_or_name]
    raise TypeError(f"spec must be a ModelSpec or a family name (str), got {type(spec_or_name).__name__}")


def check_input_shape(input_shape, n_classes) -> tuple[tuple[int, int, int], int]:
    """``(C, H, W)`` of positive ints and ``n_classes >= 2``, each at most ``MAX_COUNT`` (a larger one would only
    fail inside torch's allocator), as python ints."""
    items = check_sequence(input_shape, "input_shape", what="ints (C, H, W)")
    if len(items) != 3:
        raise ValueError(f"input_shape must be (C, H, W), got {input_shape!r}")
    shape = tuple(check_int(v, f"input_shape[{i}]", minimum=1, maximum=MAX_COUNT) for i, v in enumerate(items))
    n_classes = check_int(n_classes, "n_classes", minimum=2, maximum=MAX_COUNT)
    return shape, n_classes  # type: ignore[return-value]


def layer_plan(spec: ModelSpec | str, input_shape=(1, 16, 16), n_classes: int = 10) -> list[tuple]:
    """The layers of ``spec`` for this input, as plain tuples (shared by single and stacked models).

    Entries: ``("conv", c_in, c_out, k, h, w)`` (h, w: output size), ``("relu",)``, ``("pool",)``,
    ``("flatten",)``, ``("linear", d_in, d_out)``.
    """
    spec = get_spec(spec)
    (c, h, w), n_classes = check_input_shape(input_shape, n_classes)
    plan: list[tuple] = []
    if spec.kind == "cnn":
        for width in spec.widths:
            plan += [("conv", c, width, spec.kernel_size, h, w), ("relu",)]
            c = width
            if h >= 2 and w >= 2:
                plan.append(("pool",))
                h, w = h // 2, w // 2
    plan.append(("flatten",))
    d = c * h * w
    for width in spec.widths if spec.kind == "mlp" else spec.hidden:
        plan += [("linear", d, width), ("relu",)]
        d = width
    plan.append(("linear", d, n_classes))
    return plan


def macs(spec_or_name: ModelSpec | str, input_shape=(1, 16, 16), n_classes: int = 10) -> int:
    """Multiply-accumulates per sample of one model (Linear and Conv2d weights only; see module doc)."""
    total = 0
    for layer in layer_plan(spec_or_name, input_shape, n_classes):
        if layer[0] == "linear":
            total += layer[1] * layer[2]
        elif layer[0] == "conv":
            _, c_in, c_out, k, h, w = layer
            total += c_out * h * w * c_in * k * k
    return int(total)


def member_seed(seed: int, index: int, stream: int = 0) -> int:
    """A 63-bit seed for member ``index`` of an ensemble seeded ``seed`` (``stream`` 0: init, 1: data order).

    Derived with numpy's SeedSequence, so seeds of different (seed, index, stream) never collide in practice.
    ``seed`` is an int in ``[0, 2**63 - 1]``, ``index`` an int >= 0, ``stream`` 0 or 1 (numpy ints too).
    """
    seed = check_seed(seed)
    index = check_int(index, "index", minimum=0)
    stream = check_int(stream, "stream", minimum=0, maximum=1)
    state = np.random.SeedSequence([seed, index, stream]).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & (2**63 - 1)


def _make_layers(plan: list[tuple]) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for layer in plan:
        if layer[0] == "conv":
            _, c_in, c_out, k, _, _ = layer
            layers.append(nn.Conv2d(c_in, c_out, k, padding=k // 2))
        elif layer[0] == "relu":
            layers.append(nn.ReLU())
        elif layer[0] == "pool":
            layers.append(nn.MaxPool2d(2))
        elif layer[0] == "flatten":
            layers.append(nn.Flatten())
        else:
            layers.append(nn.Linear(layer[1], layer[2]))
    return layers


def build_model(
    spec_or_name: ModelSpec | str,
    input_shape=(1, 16, 16),
    n_classes: int = 10,
    seed: int | None = None,
) -> nn.Sequential:
    """One model of the family as an ``nn.Sequential`` (PyTorch's default initialisation).

    With ``seed`` the initialisation is drawn from a private RNG seeded with it (the global RNG is left
    untouched), so the same seed always gives the same weights; without it, from the global RNG.
    The model carries ``.spec``, ``.input_shape`` and ``.n_classes`` attributes.
    """
    spec = get_spec(spec_or_name)
    input_shape, n_classes = check_input_shape(input_shape, n_classes)
    plan = layer_plan(spec, input_shape, n_classes)
    if seed is None:
        model = nn.Sequential(*_make_layers(plan))
    else:
        seed = check_seed(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = nn.Sequential(*_make_layers(plan))
    # plain attributes (not part of the state dict) so the model can be stacked again later
    model.spec, model.input_shape, model.n_classes = spec, input_shape, n_classes
    return model
