"""The transformer core that GPT, BERT and the Llama-style model all run (chapters 04, 07, 08 and 10).

A block is attention then an MLP, each wrapped in a residual connection and a normalisation. The
model families of the course differ in a handful of choices inside the block, so those choices are
fields of ``BlockConfig`` rather than separate classes:

================  ==============================  ==============================  ==============================
field             GPT-2                           BERT                            Llama
================  ==============================  ==============================  ==============================
``norm``          ``"layernorm"``                 ``"layernorm"``                 ``"rmsnorm"``
``prenorm``       True: ``x + f(norm(x))``        False: ``norm(x + f(x))``       True
``mlp``           ``"gelu_tanh"``                 ``"gelu"`` (exact, erf)         ``"swiglu"``
``bias``          True                            True                            False
``n_kv_head``     = n_head                        = n_head                        fewer (GQA) since Llama 2 70B
``rope_base``     None (learned positions)        None (learned positions)        e.g. 10000.0 (rotary)
================  ==============================  ==============================  ==============================

How a model family plugs in: its config builds a ``BlockConfig``; the model owns what differs
(token/position embeddings, masking, output head) and runs ``Transformer(block_config, n_layer)``
between them: ``x = transformer(x, attention_mask, is_causal, cache)``. Generation lives in
``course_lib.generate`` and needs only ``model.block_size`` and ``model(idx, cache=...)``.
Parameter names follow GPT-2 (``ln_1``, ``attn.c_attn``, ``attn.c_proj``, ``ln_2``, ``mlp.c_fc``,
``mlp.c_proj``; SwiGLU adds ``mlp.c_gate``), so loading a GPT-2 checkpoint is a key-by-key copy, apart from
transposing its Conv1D weights (``GPT.from_hf``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from course_lib.attention import KVCache, MultiHeadAttention, check_attention_mask
from course_lib.checks import check_positive_int, check_positive_ints, check_probability
from course_lib.generate import generate
from course_lib.linear import Linear

NORMS = ("layernorm", "rmsnorm")
MLPS = ("gelu", "gelu_tanh", "swiglu")


@dataclass
class BlockConfig:
    """Everything one transformer block needs; see the table at the top of this module."""

    n_embd: int
    n_head: int
    n_kv_head: int | None = None  # None: one key/value head per query head; fewer: grouped-query attention
    d_ff: int | None = None  # hidden width of the MLP; None: 4 * n_embd, as in GPT-2 and BERT
    norm: str = "layernorm"
    norm_eps: float = 1e-5
    prenorm: bool = True
    mlp: str = "gelu_tanh"
    bias: bool = True  # biases in linear layers and LayerNorms
    dropout: float = 0.0  # on each sublayer's output, before the residual add
    attn_dropout: float | None = None  # on the attention weights; None: same as dropout
    rope_base: float | None = None  # None: positions come from the model's embeddings instead
    head_dim: int | None = None  # None: n_embd // n_head

    def __post_init__(self) -> None:
        check_positive_ints(self, ("n_embd", "n_head"))
        check_positive_ints(self, ("n_kv_head", "d_ff", "head_dim"), optional=True)
        check_probability(self, "dropout")
        if self.attn_dropout is not None:
            check_probability(self, "attn_dropout")
        if not self.norm_eps > 0:
            raise ValueError(f"BlockConfig.norm_eps must be > 0, got {self.norm_eps!r}")
        if self.norm not in NORMS:
            raise ValueError(f"norm={self.norm!r} is not one of {NORMS}")
        if self.mlp not in MLPS:
            raise ValueError(f"mlp={self.mlp!r} is not one of {MLPS}")
        if self.head_dim is None and self.n_embd % self.n_head != 0:
            raise ValueError(
                f"n_embd={self.n_embd} is not divisible by n_head={self.n_head}; each head gets n_embd // n_head "
                f"dimensions, so choose n_head from the divisors of n_embd"
            )


class RMSNorm(nn.Module):
    """x / rms(x) * weight: LayerNorm without the mean subtraction and bias, cheaper and as good (Llama).

    The statistic is computed in at least float32 because squares overflow float16 and a mean of
    many bf16 squares rounds badly; the result goes back to the input's dtype before the learned
    scale, as Llama does.
    """

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        xf = x.to(torch.promote_types(x.dtype, torch.float32))
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * xf.to(x.dtype)


def make_norm(cfg: BlockConfig) -> nn.Module:
    if cfg.norm == "rmsnorm":
        return RMSNorm(cfg.n_embd, cfg.norm_eps)
    return nn.LayerNorm(cfg.n_embd, eps=cfg.norm_eps, bias=cfg.bias)


class MLP(nn.Module):
    """The position-wise feed-forward layer: widen, apply a nonlinearity, project back.

    ``gelu``/``gelu_tanh``: c_proj(gelu(c_fc(x))); GPT-2 was trained with the tanh approximation of
    GELU, BERT with the exact one, and loading either needs its own. ``swiglu``:
    c_proj(silu(c_gate(x)) * c_fc(x)), a gated unit (Llama's gate/up/down projections).
    """

    def __init__(self, cfg: BlockConfig) -> None:
        super().__init__()
        d_ff = cfg.d_ff or 4 * cfg.n_embd
        self.kind = cfg.mlp
        self.c_fc = Linear(cfg.n_embd, d_ff, bias=cfg.bias)
        if cfg.mlp == "swiglu":
            self.c_gate = Linear(cfg.n_embd, d_ff, bias=cfg.bias)
        self.c_proj = Linear(d_ff, cfg.n_embd, bias=cfg.bias)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor) -> Tensor:
        if self.kind == "swiglu":
            h = F.silu(self.c_gate(x)) * self.c_fc(x)
        else:
            h = F.gelu(self.c_fc(x), approximate="tanh" if self.kind == "gelu_tanh" else "none")
        return self.dropout(self.c_proj(h))


class Block(nn.Module):
    """Attention then MLP, each in a residual connection with its normalisation before (pre-LN) or after (post-LN).

    Pre-LN keeps an untouched residual path from input to output, which is why deep GPTs train
    without warm-up tricks; post-LN is the original Transformer's and BERT's layout.
    """

    def __init__(self, cfg: BlockConfig) -> None:
        super().__init__()
        self.prenorm = cfg.prenorm
        self.ln_1 = make_norm(cfg)
        self.attn = MultiHeadAttention(
            cfg.n_embd, cfg.n_head, cfg.n_kv_head, cfg.bias, cfg.dropout, cfg.attn_dropout, cfg.rope_base, cfg.head_dim
        )
        self.ln_2 = make_norm(cfg)
        self.mlp = MLP(cfg)

    def forward(
        self,
        x: Tensor,
        attention_mask: Tensor | None = None,
        is_causal: bool = False,
        cache: KVCache | None = None,
        layer: int = 0,
    ) -> Tensor:
        if self.prenorm:
            x = x + self.attn(self.ln_1(x), attention_mask, is_causal, cache, layer)[0]
            return x + self.mlp(self.ln_2(x))
        x = self.ln_1(x + self.attn(x, attention_mask, is_causal, cache, layer)[0])
        return self.ln_2(x + self.mlp(x))


class Transformer(nn.Module):
    """``n_layer`` blocks, plus the final norm that a pre-LN stack needs (its residual stream is never normalised)."""

    def __init__(self, cfg: BlockConfig, n_layer: int) -> None:
        super().__init__()
        check_positive_int("n_layer", n_layer)
        self.h = nn.ModuleList(Block(cfg) for _ in range(n_layer))
        self.ln_f = make_norm(cfg) if cfg.prenorm else None

    def forward(
        self,
        x: Tensor,
        attention_mask: Tensor | None = None,
        is_causal: bool = False,
        cache: KVCache | None = None,
    ) -> Tensor:
        """(B, T, C) -> (B, T, C). See ``MultiHeadAttention.forward`` for the mask and cache conventions."""
        if attention_mask is not None:  # its values are read once here; every layer gets it as bool, read for free
            offset = len(cache) if cache is not None else 0
            check_attention_mask(attention_mask, (x.shape[0], offset + x.shape[1]), cached=offset)
            attention_mask = attention_mask.bool()
        for i, block in enumerate(self.h):
            x = block(x, attention_mask, is_causal, cache, i)
        return self.ln_f(x) if self.ln_f is not None else x


def check_token_ids(idx: Tensor, vocab_size: int, max_positions: int, offset: int = 0, name: str = "idx") -> None:
    """Reject bad token ids with a message that says what to do, before any kernel sees them.

    An out-of-range id otherwise surfaces as an IndexError deep inside torch on the CPU, or as an
    unrecoverable device-side assert on CUDA.
    """
    if not isinstance(idx, Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor of token ids, got {type(idx).__name__}; use torch.tensor({name})"
        )
    if idx.dtype not in (torch.int64, torch.int32):  # what nn.Embedding accepts
        raise TypeError(f"{name} must hold integer token ids, got dtype {idx.dtype}; convert with {name}.long()")
    if idx.dim() != 2:
        raise ValueError(
            f"{name} must have shape (batch, time), got {tuple(idx.shape)}; add a batch dimension with {name}[None]"
        )
    T = idx.shape[1]
    if T == 0 or idx.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(idx.shape)}); give at least one token per sequence")
    if offset + T > max_positions:
        cached = f" after {offset} cached" if offset else ""
        raise ValueError(
            f"sequence of {T} tokens{cached} is longer than the {max_positions} positions this model has; "
            f"keep only the last {max_positions - offset} tokens, e.g. {name}[:, -{max_positions - offset}:]"
        )
    bad = out_of_range(idx, vocab_size)
    if bad is not None:
        if name == "token_type_ids":
            raise ValueError(
                f"token_type_ids holds {bad}, outside [0, {vocab_size}): sentence ids run from 0 to "
                f"{vocab_size - 1} (the model's type_vocab_size is {vocab_size})"
            )
        fix = "ids are never negative" if bad < 0 else f"or build the model with vocab_size > {bad}"
        raise ValueError(
            f"token id {bad} is outside the vocabulary [0, {vocab_size}); encode text with this model's "
            f"tokenizer ({fix})"
        )


def out_of_range(ids: Tensor, size: int, ignore: int | None = None) -> int | None:
    """An entry of ``ids`` (other than ``ignore``) outside [0, size), or None when all fit.

    One ``aminmax`` reads the two extremes from the device. Skipped (None) while ``torch.compile`` traces,
    which cannot branch on tensor values.
    """
    extremes = _extremes(ids, ignore)
    if extremes is None:
        return None
    low, high, _ = extremes
    return low if low < 0 else high if high >= size else None


def _extremes(ids: Tensor, ignore: int | None) -> tuple[int, int, bool] | None:
    """The smallest and largest entry of ``ids`` other than ``ignore``, and whether there is any such entry, in one
    read from the device; None when ``ids`` is empty or ``torch.compile`` is tracing."""
    if torch.compiler.is_compiling() or ids.numel() == 0:
        return None
    if ignore is None:
        low, high = torch.stack(torch.aminmax(ids)).tolist()
        return low, high, True
    counted = ids != ignore
    kept = ids.masked_fill(~counted, 0)  # 0 is always in range
    low, high, any_counted = torch.stack((*torch.aminmax(kept), counted.any().to(ids.dtype))).tolist()
    return low, high, bool(any_counted)


def check_labels(labels: Tensor, shape: tuple[int, ...], num_classes: int, name: str = "labels") -> None:
    """Class labels must be int64 of ``shape`` in [0, num_classes), or -100 (ignored by the loss), not all -100.

    Without this, a wrong shape broadcasts or fails deep inside the loss, an id out of range is an
    IndexError on the CPU or a device-side assert on CUDA, and labels that are all -100 give a NaN loss
    (a mean over no targets). One read from the device covers both value checks.
    """
    if not isinstance(labels, Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor of class ids, got {type(labels).__name__}; use torch.tensor({name})"
        )
    if labels.dtype != torch.int64:  # F.cross_entropy takes no other integer type, and says so in its own terms
        raise TypeError(
            f"{name} must be an integer tensor of class ids (int64), got {labels.dtype}; convert with {name}.long()"
        )
    if tuple(labels.shape) != tuple(shape):
        raise ValueError(f"{name} has shape {tuple(labels.shape)}, but the inputs need {tuple(shape)}: one per example")
    extremes = _extremes(labels, -100)
    if extremes is None:
        return
    low, high, any_counted = extremes
    if not any_counted:  # the mean over no targets is 0/0: a NaN loss
        raise ValueError(
            f"every target in {name} is -100 (ignored), so there is nothing to compute a loss on; give at least one "
            "position a real label, or skip this batch"
        )
    bad = low if low < 0 else high if high >= num_classes else None
    if bad is not None:
        raise ValueError(
            f"{name} holds {bad}, outside [0, {num_classes}); labels are class ids from 0 to {num_classes - 1}, "
            "or -100 for a position the loss ignores"
        )


class DecoderLM(nn.Module):
    """What every decoder-only model of the course shares: the forward pass around the core, the
    next-token loss, and generation (one loop, ``course_lib.generate``).

    A model family only says how tokens become vectors, in ``embed(idx, offset)``: GPT adds learned
    position embeddings there, the Llama-style model adds none (rotary embeddings rotate q and k inside
    attention). It sets ``config`` (with ``vocab_size`` and ``block_size``), ``transformer`` and ``lm_head``.
    """

    config: Any
    transformer: Transformer
    lm_head: Linear

    def embed(self, idx: Tensor, offset: int) -> Tensor:
        """Token ids (B, T) at positions ``offset`` onwards -> input vectors (B, T, C)."""
        raise NotImplementedError

    @property
    def block_size(self) -> int:
        return self.config.block_size

    def forward(
        self, idx: Tensor, targets: Tensor | None = None, cache: KVCache | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """Logits (B, T, vocab_size) for the token after each position, and the mean cross-entropy against
        ``targets`` (B, T) if given (positions with target -100 are ignored), else None.

        With a ``cache``, ``idx`` holds only new tokens; they take positions after the cached ones.
        """
        offset = len(cache) if cache is not None else 0
        check_token_ids(idx, self.config.vocab_size, self.config.block_size, offset)
        if targets is not None:
            check_labels(targets, tuple(idx.shape), self.config.vocab_size, name="targets")
        x = self.transformer(self.embed(idx, offset), is_causal=True, cache=cache)  # (B, T, C)
        logits = self.lm_head(x)  # (B, T, vocab_size)
        loss = None
        if targets is not None:  # in float32 even under autocast: a bf16 log-softmax over 50k tokens is too coarse
            loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=-100)
        return logits, loss

    def generate(
        self,
        idx: Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        use_cache: bool = True,
        eos_id: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Continue ``idx`` (B, T); see ``course_lib.generate.generate`` (temperature 0 is greedy)."""
        return generate(self, idx, max_new_tokens, temperature, top_k, top_p, use_cache, eos_id, generator)
