"""Text generation for every decoder in the course (GPT in chapter 05, the Llama-style model in chapter 10).

A model plugs in by having ``block_size`` (how many positions it can attend over) and a forward that
takes ``cache=`` (a ``KVCache``, or None) and returns ``(logits, ...)`` of shape (B, T, vocab_size).
"""

from __future__ import annotations

import numbers

import torch
import torch.nn as nn
from torch import Tensor

from course_lib.attention import KVCache


def sample_next(
    logits: Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Pick one token per row of ``logits`` (B, V); returns (B, 1).

    Temperature 0 is greedy (argmax). Otherwise logits are divided by the temperature (below 1 sharpens,
    above 1 flattens), cut to the ``top_k`` most likely tokens and/or to the smallest set whose
    probability reaches ``top_p`` (nucleus sampling), and one token is drawn.
    """
    if not isinstance(logits, Tensor) or logits.dim() != 2:
        shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"logits must be a (batch, vocab) tensor, got {shape}; for a model's output take [:, -1, :]")
    _check_sampling(temperature, top_k, top_p)
    return _sample(logits, temperature, top_k, top_p, generator)


def _sample(
    logits: Tensor, temperature: float, top_k: int | None, top_p: float | None, generator: torch.Generator | None
) -> Tensor:
    """``sample_next`` without the argument checks, for the decoding loop that checked them once."""
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits.float() / temperature
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None:
        probs, order = torch.softmax(logits, dim=-1).sort(dim=-1, descending=True)
        before = probs.cumsum(dim=-1) - probs  # probability of the more likely tokens
        drop = before >= top_p  # already reached top_p without this token (the first is always kept)
        logits = logits.masked_fill(torch.zeros_like(drop).scatter(-1, order, drop), float("-inf"))
    return torch.multinomial(torch.softmax(logits, dim=-1), num_samples=1, generator=generator)


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_sampling(temperature: float, top_k: int | None, top_p: float | None) -> None:
    # a negative temperature would silently favour the least likely tokens
    if not _is_real(temperature) or not temperature >= 0:
        raise ValueError(f"temperature must be a number >= 0 (0 = greedy), got {temperature!r}")
    if top_k is not None and (not _is_int(top_k) or top_k < 1):
        raise ValueError(f"top_k must be an int >= 1 or None, got {top_k!r}")
    if top_p is not None and (not _is_real(top_p) or not 0 < top_p <= 1):
        raise ValueError(f"top_p must be in (0, 1] or None, got {top_p!r}")


def _check_args(model: nn.Module, idx: Tensor, max_new_tokens: int, eos_id: int | None) -> None:
    if not isinstance(idx, Tensor) or idx.dim() != 2:
        shape = tuple(idx.shape) if isinstance(idx, Tensor) else type(idx).__name__
        raise ValueError(
            f"idx must be a (batch, time) tensor of token ids, got {shape}; add a batch dim with idx[None]"
        )
    if not _is_int(max_new_tokens) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be an int >= 0, got {max_new_tokens!r}")
    vocab_size = getattr(getattr(model, "config", None), "vocab_size", None)
    if eos_id is not None and (not _is_int(eos_id) or eos_id < 0 or (vocab_size and eos_id >= vocab_size)):
        raise ValueError(
            f"eos_id must be a token id in [0, {vocab_size or 'vocab_size'}) or None, got {eos_id!r}; "
            "an id the model can never produce would never stop generation"
        )


def generate(
    model: nn.Module,
    idx: Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    use_cache: bool = True,
    eos_id: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Extend each row of ``idx`` (B, T) by up to ``max_new_tokens`` tokens; returns (B, T + new).

    The model sees at most its last ``block_size`` tokens: once the text is longer, the window slides,
    as in nanoGPT. With ``use_cache`` the prompt is run once and each later step feeds one token,
    reusing the keys and values cached for the others. The cache holds positions counted from the
    start of the window, so when the window slides every position changes and the cache is rebuilt
    from the new window; cached and uncached generation thus pick the same tokens. After ``eos_id`` a
    row only repeats ``eos_id``; generation stops early when every row has finished. The model samples
    in eval mode (no dropout) and is left in the mode it was in, so generating mid-training is safe.

    The loop runs under ``torch.inference_mode``, which skips the autograd bookkeeping that ``no_grad`` still
    does for every small op; a batch-1 decoding step is mostly such ops. The result is cloned out of
    inference mode, so it can feed a training step afterwards.
    """
    _check_args(model, idx, max_new_tokens, eos_id)
    _check_sampling(temperature, top_k, top_p)
    training = [m for m in model.modules() if m.training]  # dropout would sample from a noisy model
    model.eval()
    try:
        with torch.inference_mode():
            idx = _generate(model, idx, max_new_tokens, temperature, top_k, top_p, use_cache, eos_id, generator)
    finally:
        for m in training:  # each module back to its own mode, not all to one
            m.training = True
    return idx.clone()


def _generate(
    model: nn.Module,
    idx: Tensor,
    max_new_tokens: int,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    use_cache: bool,
    eos_id: int | None,
    generator: torch.Generator | None,
) -> Tensor:
    block_size = model.block_size
    cache: KVCache | None = None
    finished = torch.zeros(idx.shape[0], dtype=torch.bool, device=idx.device)
    for step in range(max_new_tokens):
        if not use_cache:
            feed = idx[:, -block_size:]
        elif cache is not None and len(cache) < block_size:
            feed = idx[:, -1:]  # the cache holds every earlier token of the window
        else:
            cache, feed = KVCache(), idx[:, -block_size:]  # first step, or the window slid: rebuild
        logits = model(feed, cache=cache)[0][:, -1, :]  # (B, V)
        if step == 0 and not torch.isfinite(logits).all():  # once: a check per token would sync every step
            raise FloatingPointError(  # the trainer's type for a diverged model, too
                "the model's logits are not finite (nan/inf): its weights diverged in training; "
                "reload a checkpoint from before the loss became nan, or train with a lower learning rate"
            )
        nxt = _sample(logits, temperature, top_k, top_p, generator)  # (B, 1)
        if eos_id is not None:
            nxt = nxt.masked_fill(finished[:, None], eos_id)
            finished |= nxt[:, 0] == eos_id
        idx = torch.cat((idx, nxt), dim=1)
        if eos_id is not None and finished.all():
            break
    return idx
