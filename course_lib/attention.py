"""Attention: the plain math (chapter 02), the multi-head module every model uses (chapter 03), and its KV cache.

``scaled_dot_product_attention`` spells out softmax(q k^T / sqrt(d)) v and also returns the attention
weights, so lessons can print and plot them. ``MultiHeadAttention`` is what the models run: one fused
projection makes queries, keys and values, and unless the weights are asked for it calls PyTorch's
``F.scaled_dot_product_attention``, which picks flash or memory-efficient kernels on a GPU. The same
module covers the variants the course's three model families need: causal or bidirectional, padding
masks, grouped-query attention (fewer key/value heads than query heads) and rotary position embeddings.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from course_lib.checks import check_positive_int, check_positive_real
from course_lib.linear import Linear


def scaled_dot_product_attention(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None, is_causal: bool = False
) -> tuple[Tensor, Tensor]:
    """softmax(q k^T / sqrt(d)) v, written out; returns ``(output, weights)``.

    Shapes follow PyTorch: q is (..., Tq, d), k is (..., Tk, d), v is (..., Tk, dv). ``mask`` broadcasts
    to (..., Tq, Tk) and is either boolean (True = may attend) or a float added to the scores.
    ``is_causal`` lets query i see keys 0..i, the mask a language model needs so that no position
    peeks at the tokens it must predict. A query that may attend to no key gets zero output (and zero
    weights) rather than NaN, as PyTorch's own kernel does.

    A padding mask (B, Tk) needs a query axis before it broadcasts: ``mask[:, None, :]`` for a 3-D q,
    ``mask[:, None, None, :]`` for a 4-D q (B, heads, Tq, d). Without it a mask of the wrong shape is
    refused, except when B happens to equal Tq: then (B, Tk) reads as a valid (Tq, Tk) mask and row b masks
    query b, which no shape check can tell apart.
    """
    _check_qkv(q, k, v)
    if is_causal and mask is not None:
        raise ValueError("pass either mask or is_causal=True, not both; fold the causal mask into your mask instead")
    if mask is not None:
        _check_mask(mask, q, k)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., Tq, Tk)
    if is_causal:
        mask = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool, device=q.device).tril()
    if mask is not None and mask.dtype == torch.bool:
        scores = scores.masked_fill(~mask, float("-inf"))
    elif mask is not None:
        scores = scores + mask
    weights = torch.softmax(scores, dim=-1)
    weights = weights.nan_to_num(0.0)  # rows with every key masked: softmax of all -inf is NaN
    return weights @ v, weights


def _check_qkv(q: Tensor, k: Tensor, v: Tensor) -> None:
    """q, k, v must be floating-point tensors of one dtype, shaped (..., Tq, d), (..., Tk, d) and (..., Tk, dv)."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}; use torch.tensor({name})")
        if not t.is_floating_point():
            raise TypeError(f"{name} has dtype {t.dtype}; attention needs floating-point q, k, v: use {name}.float()")
    if not q.dtype == k.dtype == v.dtype:
        raise TypeError(
            f"q, k, v have dtypes {q.dtype}, {k.dtype}, {v.dtype}; give all three one dtype, e.g. with .float()"
        )
    fits = min(q.dim(), k.dim(), v.dim()) >= 2 and q.shape[-1] == k.shape[-1] and k.shape[-2] == v.shape[-2]
    try:
        torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(
            f"expected q (..., Tq, d), k (..., Tk, d), v (..., Tk, dv); got q {tuple(q.shape)}, "
            f"k {tuple(k.shape)}, v {tuple(v.shape)}: q and k need the same last size, k and v the same Tk, "
            "and the leading (batch, head) sizes must match"
        )


def _check_mask(mask: Tensor, q: Tensor, k: Tensor) -> None:
    """``mask`` must be boolean or additive float, and broadcast to the scores' shape (..., Tq, Tk)."""
    if not isinstance(mask, Tensor):
        raise TypeError(f"mask must be a torch.Tensor, got {type(mask).__name__}; use torch.tensor(mask)")
    if mask.dtype != torch.bool and not mask.is_floating_point():
        raise TypeError(  # a 1/0 integer mask would be added to the scores, masking nothing
            f"mask has dtype {mask.dtype}; pass mask.bool() (True = may attend) or a float mask of 0 and -inf"
        )
    scores = (*torch.broadcast_shapes(q.shape[:-2], k.shape[:-2]), q.shape[-2], k.shape[-2])
    try:
        fits = torch.broadcast_shapes(mask.shape, scores) == scores  # False when the mask would grow the scores
    except RuntimeError:
        fits = False
    if not fits:
        axis = "mask[:, None, None, :]" if q.dim() >= 4 else "mask[:, None, :]"
        raise ValueError(
            f"mask has shape {tuple(mask.shape)}, which does not broadcast to the scores' shape {tuple(scores)} "
            f"(..., Tq, Tk) of q {tuple(q.shape)} and k {tuple(k.shape)}; a padding mask (B, Tk) needs a query "
            f"axis: {axis}"
        )
    if mask.is_floating_point() and mask.numel() and not torch.compiler.is_compiling():
        ones = mask == 1  # all 0 is a valid additive mask (nothing masked); 0s and 1s is a keep-mask in disguise
        if (ones.any() & (ones | (mask == 0)).all()).item():
            raise TypeError(
                "mask holds 0/1 floats, which would be added to the scores; pass mask.bool() (True = may attend) "
                "or a float mask of 0 and -inf"
            )


def check_attention_mask(attention_mask: Tensor | None, shape: tuple[int, int], cached: int = 0) -> None:
    """A Hugging Face padding mask must be a tensor of ``shape`` (B, Tk) holding 1 for a token and 0 for padding.

    A wrong shape would broadcast silently, and an additive 0/-inf mask would be inverted by ``.bool()``
    (-inf is True). Reading the values costs one device sync; a boolean mask needs none. ``cached`` counts the
    positions held in a KV cache, which the mask covers too.
    """
    if attention_mask is None:
        return
    if not isinstance(attention_mask, Tensor):
        raise TypeError(
            f"attention_mask must be a torch.Tensor, got {type(attention_mask).__name__}; use "
            "torch.tensor(attention_mask) (or return_tensors='pt' from a Hugging Face tokenizer)"
        )
    if tuple(attention_mask.shape) != tuple(shape):
        tokens = f" ({cached} cached + {shape[1] - cached} new tokens)" if cached else ""
        raise ValueError(
            f"attention_mask has shape {tuple(attention_mask.shape)} but the input needs {tuple(shape)}{tokens}; "
            "pass one entry per token, 1 for a real token and 0 for padding"
        )
    if attention_mask.dtype == torch.bool or attention_mask.numel() == 0 or torch.compiler.is_compiling():
        return
    if not ((attention_mask == 0) | (attention_mask == 1)).all().item():
        raise ValueError(
            "attention_mask is 1 for tokens and 0 for padding (Hugging Face style), but it holds other values; "
            "if it is an additive 0/-inf mask, pass (mask == 0).long()"
        )


def rotary_cos_sin(positions: Tensor, head_dim: int, base: float, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """cos and sin of the rotary angles ``position / base^(2i/head_dim)``, each (T, head_dim).

    Frequencies are laid out as two copies side by side, matching ``rotate_half`` (the convention of
    Hugging Face's Llama), so real checkpoints load without permuting their q/k weights. Angles are
    computed in at least float32: bf16 rounds positions above 512 to multiples of 4, so 1000 and 1002 collide.
    """
    work = torch.float64 if dtype == torch.float64 else torch.float32
    inv_freq = base ** -(torch.arange(0, head_dim, 2, device=positions.device, dtype=work) / head_dim)
    angles = positions.to(work)[:, None] * inv_freq[None, :]  # (T, head_dim/2)
    angles = torch.cat((angles, angles), dim=-1)  # (T, head_dim)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def rotate_half(x: Tensor) -> Tensor:
    """(x1, x2) -> (-x2, x1) on the two halves of the last dimension: a 90-degree turn of each pair."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate each (i, i + d/2) pair of x (..., T, d) by its position's angle, so q.k depends on i - j only."""
    return x * cos + rotate_half(x) * sin


class KVCache:
    """Keys and values of every layer for the tokens seen so far, so decoding feeds one new token at a time.

    Without it, each new token re-computes attention inputs for the whole prefix: quadratic work for
    a sequence that only grew by one. Position-dependent models read ``len(cache)`` as the offset.
    Each layer writes into a buffer with room to spare that doubles when full, so appending one token
    copies one token; ``torch.cat`` would copy the whole cache at every step.
    """

    def __init__(self) -> None:
        self._k: list[Tensor] = []  # per layer: (B, n_kv_head, capacity, hs), filled up to _n[layer]
        self._v: list[Tensor] = []
        self._n: list[int] = []

    @property
    def keys(self) -> list[Tensor]:
        """Per layer, the cached keys (B, n_kv_head, T, hs)."""
        return [k[..., :n, :] for k, n in zip(self._k, self._n, strict=True)]

    @property
    def values(self) -> list[Tensor]:
        """Per layer, the cached values (B, n_kv_head, T, hs)."""
        return [v[..., :n, :] for v, n in zip(self._v, self._n, strict=True)]

    def __len__(self) -> int:
        """How many positions are cached (in layer 0, which every forward pass updates first)."""
        return self._n[0] if self._n else 0

    def length(self, layer: int) -> int:
        return self._n[layer] if layer < len(self._n) else 0

    def update(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Append this step's k, v (B, n_kv_head, T, hs) to ``layer`` and return everything cached there."""
        t = k.shape[-2]
        if layer < len(self._k) and k.shape[:-2] != self._k[layer].shape[:-2]:
            raise ValueError(
                f"this cache holds (batch, heads) = {tuple(self._k[layer].shape[:-2])} in layer {layer}, but the new "
                f"keys have {tuple(k.shape[:-2])}; a cache serves one batch of one model: start a fresh KVCache()"
            )
        if layer == len(self._k):
            self._k.append(self._grown(k, None, 0, 2 * t))
            self._v.append(self._grown(v, None, 0, 2 * t))
            self._n.append(0)
        n = self._n[layer]
        if n + t > self._k[layer].shape[-2]:
            self._k[layer] = self._grown(k, self._k[layer], n, 2 * (n + t))
            self._v[layer] = self._grown(v, self._v[layer], n, 2 * (n + t))
        self._k[layer][..., n : n + t, :] = k
        self._v[layer][..., n : n + t, :] = v
        self._n[layer] = n + t
        return self._k[layer][..., : n + t, :], self._v[layer][..., : n + t, :]

    @staticmethod
    def _grown(like: Tensor, old: Tensor | None, filled: int, capacity: int) -> Tensor:
        """A buffer of ``capacity`` positions shaped like ``like``, holding the first ``filled`` ones of ``old``."""
        buffer = like.new_empty(*like.shape[:-2], max(capacity, 16), like.shape[-1])
        if old is not None:
            buffer[..., :filled, :] = old[..., :filled, :]
        return buffer


class MultiHeadAttention(nn.Module):
    """Multi-head self-attention with a fused q/k/v projection (named like GPT-2's ``c_attn``/``c_proj``).

    ``n_kv_head < n_head`` gives grouped-query attention: each key/value head serves
    ``n_head // n_kv_head`` query heads, which shrinks the KV cache by that factor. ``rope_base``
    switches on rotary position embeddings, applied to q and k after the projection.
    """

    def __init__(
        self,
        n_embd: int,
        n_head: int,
        n_kv_head: int | None = None,
        bias: bool = True,
        dropout: float = 0.0,
        attn_dropout: float | None = None,
        rope_base: float | None = None,
        head_dim: int | None = None,
    ) -> None:
        super().__init__()
        n_kv_head = n_head if n_kv_head is None else n_kv_head
        for name, value in (("n_embd", n_embd), ("n_head", n_head), ("n_kv_head", n_kv_head)):
            check_positive_int(name, value)
        check_positive_int("head_dim", head_dim, optional=True)
        if head_dim is None and n_embd % n_head != 0:
            raise ValueError(
                f"n_embd={n_embd} is not divisible by n_head={n_head}; each head gets n_embd // n_head "
                f"dimensions, so pick n_head from the divisors of n_embd (or n_embd a multiple of n_head)"
            )
        if n_head % n_kv_head != 0:
            raise ValueError(
                f"n_head={n_head} is not divisible by n_kv_head={n_kv_head}; each key/value head serves a whole "
                f"group of query heads, so pick n_kv_head from the divisors of n_head"
            )
        self.n_embd, self.n_head, self.n_kv_head = n_embd, n_head, n_kv_head
        self.head_dim = head_dim or n_embd // n_head
        if rope_base is not None:  # base ** -x: a base of 0 or less gives inf, NaN or garbage angles
            rope_base = check_positive_real("rope_base", rope_base)
        if rope_base is not None and self.head_dim % 2 != 0:
            raise ValueError(f"rotary embeddings rotate pairs, so head_dim must be even, got {self.head_dim}")
        self.rope_base = rope_base
        self.c_attn = Linear(n_embd, (n_head + 2 * n_kv_head) * self.head_dim, bias=bias)  # q, k, v stacked
        self.c_proj = Linear(n_head * self.head_dim, n_embd, bias=bias)
        self.attn_dropout = dropout if attn_dropout is None else attn_dropout
        self.resid_dropout = nn.Dropout(dropout)

    def forward(
        self,
        x: Tensor,
        attention_mask: Tensor | None = None,
        is_causal: bool = False,
        cache: KVCache | None = None,
        layer: int = 0,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """Attend over ``x`` (B, T, C); returns ``(output (B, T, C), weights (B, nh, T, Tk) or None)``.

        ``attention_mask`` (B, Tk) is Hugging Face style: 1 = real token, 0 = padding, covering the cached
        positions too (Tk = cached + T). With a ``cache``, x holds only the new tokens, which sit after
        the cached ones: the causal mask and rotary positions are shifted by the cache length.
        """
        if x.dim() != 3 or x.shape[-1] != self.n_embd:
            raise ValueError(
                f"x must be (batch, time, {self.n_embd}), got {tuple(x.shape)}; "
                "add a batch dimension with x[None] or check the model's width"
            )
        B, T, _ = x.shape
        offset = cache.length(layer) if cache is not None else 0
        check_attention_mask(attention_mask, (B, offset + T), cached=offset)  # one sync unless the mask is bool
        hs = self.head_dim
        q, k, v = self.c_attn(x).split([self.n_head * hs, self.n_kv_head * hs, self.n_kv_head * hs], dim=-1)
        q = q.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_kv_head, hs).transpose(1, 2)  # (B, nkv, T, hs)
        v = v.view(B, T, self.n_kv_head, hs).transpose(1, 2)  # (B, nkv, T, hs)
        if self.rope_base is not None:
            positions = torch.arange(offset, offset + T, device=x.device)
            cos, sin = rotary_cos_sin(positions, hs, self.rope_base, q.dtype)
            q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        if cache is not None:
            k, v = cache.update(layer, k, v)  # (B, nkv, Tk, hs)
        if self.n_kv_head != self.n_head:  # grouped-query: query head h reads key/value head h // group
            group = self.n_head // self.n_kv_head
            k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)  # (B, nh, Tk, hs)

        mask = self._mask(attention_mask, is_causal, T, offset, x.device)
        # PyTorch's is_causal aligns the mask top-left, which is right only when nothing is cached yet
        causal_only = is_causal and offset == 0 and mask is None
        if need_weights:
            y, weights = scaled_dot_product_attention(q, k, v, mask=mask, is_causal=causal_only)
            if self.training and self.attn_dropout > 0:
                y = F.dropout(weights, self.attn_dropout) @ v
        else:
            p = self.attn_dropout if self.training else 0.0
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, is_causal=causal_only)
            weights = None
        y = y.transpose(1, 2).reshape(B, T, self.n_head * hs)  # (B, T, nh*hs): heads side by side
        return self.resid_dropout(self.c_proj(y)), weights

    @staticmethod
    def _mask(attention_mask: Tensor | None, is_causal: bool, T: int, offset: int, device) -> Tensor | None:
        """The boolean (True = attend) mask, (B or 1, 1, T, Tk), or None when the kernel's is_causal suffices."""
        mask = None
        if is_causal and offset > 0 and T > 1:  # new query i sits at position offset + i
            mask = torch.ones(T, offset + T, dtype=torch.bool, device=device).tril(diagonal=offset)[None, None]
        if attention_mask is not None:
            pad = attention_mask.bool()[:, None, None, :]  # (B, 1, 1, Tk)
            if is_causal and mask is None and T > 1:
                mask = torch.ones(T, T, dtype=torch.bool, device=device).tril()[None, None]
            mask = pad if mask is None else mask & pad
        return mask
