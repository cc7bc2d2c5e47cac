"""K members of one architecture, evaluated (and trained) in a single forward and backward pass.

Each weight of the family gets a leading member axis: a ``Linear(i, o)`` becomes a ``(K, o, i)`` weight used
with a batched matmul (``torch.baddbmm`` on feature-major activations ``(K, D, N)``), a ``Conv2d`` a
``(K, o, i, kh, kw)`` weight used as one grouped convolution (``groups=K``) on activations laid out as
``(N, K * C, H, W)``.  When every member sees the same batch ``(N, C, H, W)``, the first layer is a single
ordinary GEMM / convolution with ``K * o`` outputs, so the input is never copied K times.

Why explicit stacked layers rather than ``torch.func.stack_module_state`` + ``vmap``: both compute the same
thing (vmap also lowers conv2d to a grouped convolution and linear to a batched matmul), but on a 2-core cpu
the explicit layers were faster per training step (forward + backward + AdamW, K = 8, batch 128): 1.26x for
``mlp-m`` on 8x8 digits, 1.2-1.5x for ``mlp-m`` on 16x16, 1.0-1.3x for ``cnn-s`` (``stacking_engines`` in
``benchmarks/bench_training.py``).  They also keep ordinary ``nn.Parameter`` objects that any optimizer,
``state_dict`` and safetensors handle directly.  Note: on a cpu a grouped convolution is about as fast as K
separate ones (the convs are compute-bound there); stacking pays off most for the MLPs and on GPUs.

The state-dict keys of a :class:`StackedEnsemble` are those of one member from
:func:`~ensemble_lab.models.family.build_model` (``"0.weight"``, ``"0.bias"``, ... -- an MLP's first Linear is
``"1.weight"``, after the Flatten), with a leading ``K`` axis.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .._validation import (
    MAX_COUNT,
    check_bool,
    check_int,
    check_model_input,
    check_module,
    check_seed,
    check_sequence,
)
from .family import ModelSpec, build_model, check_input_shape, get_spec, layer_plan, macs, member_seed

__all__ = ["StackedEnsemble", "StackedLinear", "StackedConv2d"]


class StackedLinear(nn.Module):
    """K independent ``Linear(d_in, d_out)`` layers: weight ``(K, d_out, d_in)``, bias ``(K, d_out)``.

    Activations are laid out feature-major, ``(K, d, N)``: then ``out = W @ x + b`` is one batched matmul whose
    weight gradient ``grad_out @ x^T`` comes out in the weight's own ``(K, d_out, d_in)`` layout (the row-major
    ``x @ W^T`` form makes autograd copy every weight gradient from a transposed layout: ~10% of a cpu step).

    ``k``, ``d_in`` and ``d_out`` are ints in ``[1, MAX_COUNT]``; the weights are left uninitialised.
    """

    def __init__(self, k: int, d_in: int, d_out: int):
        super().__init__()
        k = check_int(k, "k", minimum=1, maximum=MAX_COUNT)
        d_in = check_int(d_in, "d_in", minimum=1, maximum=MAX_COUNT)
        d_out = check_int(d_out, "d_out", minimum=1, maximum=MAX_COUNT)
        self.k, self.d_in, self.d_out = k, d_in, d_out
        self.weight = nn.Parameter(torch.empty(k, d_out, d_in))
        self.bias = nn.Parameter(torch.empty(k, d_out))

    def forward(self, x: torch.Tensor, shared: bool = False) -> torch.Tensor:
        if shared:  # x: (N, d_in), the same for all members -> one GEMM with K * d_out outputs
            out = torch.addmm(self.bias.reshape(-1, 1), self.weight.reshape(-1, self.d_in), x.t())
            return out.view(self.k, self.d_out, x.shape[0])
        # x: (K, d_in, N) -> (K, d_out, N)
        return torch.baddbmm(self.bias.unsqueeze(2), self.weight, x)

    def extra_repr(self) -> str:
        return f"k={self.k}, d_in={self.d_in}, d_out={self.d_out}"


class StackedConv2d(nn.Module):
    """K independent ``Conv2d(c_in, c_out, ks, padding=ks // 2)`` layers as one grouped convolution.

    Activations are laid out ``(N, K * C, H, W)`` (member-major channels).  ``k``, ``c_in``, ``c_out`` and
    ``kernel_size`` are ints in ``[1, MAX_COUNT]``; the weights are left uninitialised.
    """

    def __init__(self, k: int, c_in: int, c_out: int, kernel_size: int):
        super().__init__()
        k = check_int(k, "k", minimum=1, maximum=MAX_COUNT)
        c_in = check_int(c_in, "c_in", minimum=1, maximum=MAX_COUNT)
        c_out = check_int(c_out, "c_out", minimum=1, maximum=MAX_COUNT)
        kernel_size = check_int(kernel_size, "kernel_size", minimum=1, maximum=MAX_COUNT)
        self.k, self.c_in, self.c_out, self.kernel_size = k, c_in, c_out, kernel_size
        self.weight = nn.Parameter(torch.empty(k, c_out, c_in, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(k, c_out))

    def forward(self, x: torch.Tensor, shared: bool = False) -> torch.Tensor:
        weight = self.weight.reshape(self.k * self.c_out, self.c_in, self.kernel_size, self.kernel_size)
        groups = 1 if shared else self.k  # shared: x is (N, c_in, H, W), one conv with K * c_out outputs
        return F.conv2d(x, weight, self.bias.reshape(-1), padding=self.kernel_size // 2, groups=groups)

    def extra_repr(self) -> str:
        return f"k={self.k}, c_in={self.c_in}, c_out={self.c_out}, kernel_size={self.kernel_size}"


class StackedEnsemble(nn.Module):
    """K members of ``spec`` in one module: ``forward`` returns member logits ``(K, N, n_classes)``.

    Member ``i`` is initialised exactly as ``build_model(spec, input_shape, n_classes,
    seed=member_seed(seed, i))`` would be.

    ``forward(x)`` takes ``x`` shaped ``(N, C, H, W)`` (every member sees the same batch) or
    ``(K, N, C, H, W)`` (member ``i`` sees ``x[i]``, e.g. its own data order during training): a tensor on the
    ensemble's device or a numpy array (placed there), of any real dtype (cast to the ensemble's), finite.
    ``forward(x, validate=False)`` skips the conversions and the finiteness check (a training loop that checked
    its data once); the shape is always checked.  ``k`` is an int in ``[1, MAX_COUNT]``.
    """

    def __init__(
        self,
        spec: ModelSpec | str,
        k: int,
        input_shape=(1, 16, 16),
        n_classes: int = 10,
        seed: int = 0,
    ):
        super().__init__()
        self.spec = get_spec(spec)
        self.k = check_int(k, "k", minimum=1, maximum=MAX_COUNT)
        self.input_shape, self.n_classes = check_input_shape(input_shape, n_classes)
        self.seed = check_seed(seed)
        self._plan = layer_plan(self.spec, self.input_shape, self.n_classes)
        for i, layer in enumerate(self._plan):
            if layer[0] == "conv":
                module: nn.Module = StackedConv2d(self.k, layer[1], layer[2], layer[3])
            elif layer[0] == "linear":
                module = StackedLinear(self.k, layer[1], layer[2])
            elif layer[0] == "relu":
                module = nn.ReLU()
            elif layer[0] == "pool":
                module = nn.MaxPool2d(2)
            else:
                module = nn.Flatten()
            self.add_module(str(i), module)
        members = [
            build_model(self.spec, self.input_shape, self.n_classes, seed=member_seed(self.seed, i))
            for i in range(self.k)
        ]
        self._load_members(members)

    # ------------------------------------------------------------------ conversion
    @torch.no_grad()
    def _load_members(self, members: Sequence[nn.Module]) -> None:
        states = [m.state_dict() for m in members]
        own = self.state_dict()
        for key, target in own.items():
            if any(key not in s for s in states):
                raise ValueError(f"members must all have the parameter {key!r} of a {self.spec.name!r} model")
            for i, s in enumerate(states):  # checked before torch.stack, which would fail on its own terms
                if tuple(s[key].shape) != tuple(target.shape[1:]):
                    raise ValueError(
                        f"members must have {key} of shape {tuple(target.shape[1:])} for {self.spec.name!r} with "
                        f"input {self.input_shape} and {self.n_classes} classes, got {tuple(s[key].shape)} in "
                        f"members[{i}]"
                    )
                if s[key].device != target.device:
                    raise ValueError(
                        f"members must all be on one device ({target.device}), got {key} of members[{i}] on "
                        f"{s[key].device}; move them explicitly"
                    )
            stacked = torch.stack([s[key].detach() for s in states])
            target.copy_(stacked)

    @classmethod
    def from_members(
        cls,
        members: Sequence[nn.Module],
        spec: ModelSpec | str | None = None,
        input_shape=None,
        n_classes: int | None = None,
    ) -> StackedEnsemble:
        """Stack separate models (as made by :func:`build_model`) into one ensemble on their device.

        ``spec``, ``input_shape`` and ``n_classes`` default to the attributes ``build_model`` sets on its models.
        """
        if isinstance(members, nn.Module) or not isinstance(members, (list, tuple)) or len(members) == 0:
            raise ValueError(f"members must be a non-empty list of models, got {type(members).__name__}")
        for i, member in enumerate(members):
            check_module(member, f"members[{i}]")
        first = members[0]
        if next(first.parameters(), None) is None:
            raise ValueError(f"members must be models with weights, got a {type(first).__name__} without parameters")
        spec = spec if spec is not None else getattr(first, "spec", None)
        input_shape = input_shape if input_shape is not None else getattr(first, "input_shape", None)
        n_classes = n_classes if n_classes is not None else getattr(first, "n_classes", None)
        if spec is None or input_shape is None or n_classes is None:
            raise ValueError("spec, input_shape and n_classes are needed for models not made by build_model")
        ens = cls(spec, len(members), input_shape, n_classes)
        param = next(first.parameters())
        ens.to(device=param.device, dtype=param.dtype)
        ens._load_members(members)
        return ens

    @torch.no_grad()
    def members(self) -> list[nn.Module]:
        """Unstacked copies: K separate ``nn.Sequential`` models on this ensemble's device."""
        state = self.state_dict()
        out = []
        for i in range(self.k):
            model = build_model(self.spec, self.input_shape, self.n_classes, seed=0)
            model.load_state_dict({key: value[i] for key, value in state.items()})
            out.append(model.to(device=self.device, dtype=self.dtype))
        return out

    def subset(self, indices: Sequence[int]) -> StackedEnsemble:
        """A new ensemble holding copies of the members ``indices`` (in that order; repeats allowed): a list,
        tuple, range, 1-d numpy array or 1-d integer tensor of ints in ``[0, k)``."""
        if isinstance(indices, torch.Tensor):
            if indices.ndim != 1 or indices.dtype == torch.bool or indices.is_floating_point() or indices.is_complex():
                raise TypeError(
                    f"indices must be member indices (a 1-d integer tensor), got dtype {indices.dtype}, "
                    f"shape {tuple(indices.shape)}"
                )
            indices = indices.tolist()
        elif isinstance(indices, range):
            indices = list(indices)
        items = check_sequence(indices, "indices", what="member indices")
        idx = [check_int(i, f"indices[{j}]", minimum=0, maximum=self.k - 1) for j, i in enumerate(items)]
        ens = StackedEnsemble(self.spec, len(idx), self.input_shape, self.n_classes)
        ens.to(device=self.device, dtype=self.dtype)
        with torch.no_grad():
            index = torch.tensor(idx, device=self.device)
            ens.load_state_dict({key: value.index_select(0, index) for key, value in self.state_dict().items()})
        return ens

    # ------------------------------------------------------------------ properties
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    @property
    def macs_per_member(self) -> int:
        """Multiply-accumulates per sample of one member (see :func:`~ensemble_lab.models.family.macs`)."""
        return macs(self.spec, self.input_shape, self.n_classes)

    def extra_repr(self) -> str:
        return f"spec={self.spec.name!r}, k={self.k}, input_shape={self.input_shape}, n_classes={self.n_classes}"

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor, validate: bool = True) -> torch.Tensor:
        if check_bool(validate, "validate"):
            x = check_model_input(x, "x", next(self.parameters()), "the ensemble's")
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        chw = tuple(x.shape[-3:])
        if x.ndim == 4 and chw == self.input_shape:
            shared = True
        elif x.ndim == 5 and x.shape[0] == self.k and chw == self.input_shape:
            shared = False
        else:
            c, h, w = self.input_shape
            raise ValueError(
                f"x must have shape (N, {c}, {h}, {w}) or ({self.k}, N, {c}, {h}, {w}), got {tuple(x.shape)}"
            )
        n = x.shape[-4]
        k = self.k
        if n == 0:  # no samples: no logits (a reshape of 0 elements to (0, -1) is ambiguous)
            return torch.empty(k, 0, self.n_classes, device=x.device, dtype=self.dtype)
        grouped = False  # activations laid out (N, K * C, H, W)
        for layer, module in zip(self._plan, self.children(), strict=False):
            kind = layer[0]
            if kind == "conv":
                if not shared and not grouped:  # (K, N, C, H, W) -> (N, K * C, H, W)
                    x = x.transpose(0, 1).reshape(n, -1, *x.shape[-2:])
                x = module(x, shared=shared)
                shared, grouped = False, True
            elif kind == "flatten":  # -> feature-major (K, D, N) for the dense layers, or (N, D) if shared
                if grouped:  # (N, K * C, h, w) -> (K, C * h * w, N)
                    x = x.reshape(n, k, -1).permute(1, 2, 0)
                    grouped = False
                elif shared:
                    x = x.reshape(n, -1)
                else:  # (K, N, C, H, W) -> (K, D, N)
                    x = x.reshape(k, n, -1).transpose(1, 2)
            elif kind == "linear":
                x = module(x, shared=shared)
                shared = False
            else:
                x = module(x)
        return x.transpose(1, 2)  # (K, C, N) -> (K, N, C)
