"""LoRA: fine-tune a big matrix by training a small low-rank correction beside it (chapter 06).

Hu et al. (2021) observed that the change fine-tuning makes to a weight matrix has low rank, so instead of
updating ``W`` (out x in) they freeze it and learn ``delta_W = B @ A`` with ``A`` (r x in) and ``B``
(out x r), r much smaller than in and out. The layer computes ``W x + (alpha / r) * B (A x)``; ``B`` starts
at zero, so training starts from exactly the pretrained model. After training, ``merge()`` adds ``B @ A``
into ``W`` and the layer costs no more than the original.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def _check_rank(base: nn.Module, r: int, name: str = "") -> None:
    if not isinstance(base, nn.Linear):
        raise TypeError(f"LoRALinear wraps an nn.Linear, got {type(base).__name__}")
    if isinstance(r, bool) or not isinstance(r, int) or not 1 <= r <= min(base.in_features, base.out_features):
        raise ValueError(
            f"LoRA rank r={r!r} must be an int from 1 to min(in, out) = "
            f"{min(base.in_features, base.out_features)}{' for ' + name if name else ''}; "
            "pick a small rank such as 4 or 8"
        )


def _check_untied(model: nn.Module, names: list[str]) -> None:
    """Refuse a target whose weight another module shares (GPT's lm_head is wte's matrix): merging would
    add ``B @ A`` to the shared tensor and silently change the other module too."""
    params = list(model.named_parameters(remove_duplicate=False))  # a shared tensor under each of its names
    for name in names:
        weight = model.get_submodule(name).weight
        others = [other for other, p in params if p is weight and other != f"{name}.weight"]
        if others:
            raise ValueError(
                f"{name}'s weight is tied to {others[0]}; merging LoRA into it would change "
                f"{others[0].rsplit('.', 1)[0]} too: leave {name} out of the targets"
            )


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable rank-``r`` update ``(alpha / r) * B @ A``."""

    def __init__(self, base: nn.Linear, r: int = 8, alpha: float = 16.0) -> None:
        super().__init__()
        _check_rank(base, r)
        self.base = base
        self.base.requires_grad_(False)
        self.r, self.scale = r, alpha / r
        self.A = nn.Parameter(torch.empty(r, base.in_features, device=base.weight.device))
        self.B = nn.Parameter(torch.zeros(base.out_features, r, device=base.weight.device))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))  # as nn.Linear initialises its weight
        self.merged = False

    def forward(self, x: Tensor) -> Tensor:
        y = self.base(x)  # (..., out)
        if not self.merged:
            y = y + (x @ self.A.T @ self.B.T) * self.scale  # (..., in) -> (..., r) -> (..., out)
        return y

    @torch.no_grad()
    def merge(self) -> None:
        """Fold ``scale * B @ A`` into the frozen weight: same outputs, one matrix product instead of three."""
        if not self.merged:
            self.base.weight += (self.B @ self.A) * self.scale
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Take the update back out of the weight (to train further, or to recover the base model)."""
        if self.merged:
            self.base.weight -= (self.B @ self.A) * self.scale
            self.merged = False

    def extra_repr(self) -> str:
        return f"r={self.r}, scale={self.scale:g}, merged={self.merged}"


def add_lora(model: nn.Module, targets: tuple[str, ...], r: int = 8, alpha: float = 16.0) -> list[str]:
    """Freeze every parameter of ``model`` and replace each ``nn.Linear`` whose name ends with one of
    ``targets`` (e.g. ``("attn.c_attn", "attn.c_proj")``) by a ``LoRALinear``; returns the names replaced.

    Modules added to the model afterwards (a new classification head) stay trainable. Every check runs before
    the model is touched, so a call that fails leaves it as it was.
    """
    if isinstance(targets, str):  # tuple("c_attn") would match every name ending in "c", "_", "a", ...
        raise TypeError(f"targets must be a tuple of name endings, e.g. ({targets!r},), not a bare string")
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and n.endswith(tuple(targets))]
    if not names:
        wrapped = [n for n, m in model.named_modules() if isinstance(m, LoRALinear) and n.endswith(tuple(targets))]
        if wrapped:
            raise ValueError(f"LoRA is already applied to {wrapped}; apply it once, to a fresh copy of the model")
        linears = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)})
        raise ValueError(f"no nn.Linear in the model ends with any of {targets}; its linear layers end with {linears}")
    for name in names:
        _check_rank(model.get_submodule(name), r, name)
    _check_untied(model, names)
    model.requires_grad_(False)
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        setattr(parent, child, LoRALinear(getattr(parent, child), r, alpha))
    return names


def count_trainable(model: nn.Module) -> int:
    """The number of parameters the optimizer will update (``requires_grad``), each shared tensor once."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def merge_lora(model: nn.Module) -> None:
    """Merge every ``LoRALinear`` in ``model`` (see ``LoRALinear.merge``)."""
    for module in model.modules():
        if isinstance(module, LoRALinear):
            module.merge()
