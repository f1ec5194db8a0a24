"""Checkers and concept questions for chapter 02, self-attention.

The reference for every checker is PyTorch's own ``scaled_dot_product_attention`` (or plain float64
math), never the learner's code path in ``course_lib``, so a shared mistake cannot pass unnoticed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from course_lib.exercises import changed_in_place, exercise, nonfinite, question

_WORKED_Q = torch.tensor([[1.0, 2.0, 3.0]])
_WORKED_K = torch.tensor([[4.0, 5.0, 6.0]])
_WORKED_V = torch.tensor([[7.0, 8.0, 9.0]])


def _random_qkv(seed: int, *shape: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(*shape, generator=g, dtype=torch.float64) for _ in range(3))  # type: ignore[return-value]


def _close(got: Any, expected: torch.Tensor, what: str, atol: float = 1e-6) -> tuple[bool, str]:
    """Compare a learner's tensor with the reference and say how it differs."""
    if got is None:
        return False, "your function returned None: replace the `...` in its body with your code"
    if not isinstance(got, torch.Tensor):
        return False, f"{what} should be a torch.Tensor, got {type(got).__name__}"
    if tuple(got.shape) != tuple(expected.shape):
        return False, f"{what} has shape {tuple(got.shape)}, expected {tuple(expected.shape)}"
    bad = nonfinite(got)
    if bad:  # before comparing: NaN - x is NaN, and NaN > atol is False
        return False, f"{what} contains {bad}"
    diff = (got.double() - expected.double()).abs().max().item()
    if diff > atol:
        return False, f"{what} is off by up to {diff:.3g}"
    return True, f"{what} matches the reference (max difference {diff:.1e})"


@exercise("ch02.scores")
def _scores(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> tuple[bool, str]:
    """``fn(q, k)`` returns the scaled scores q @ k^T / sqrt(d_k) for any leading batch shape."""
    for seed, shape in ((0, (3, 4)), (1, (2, 5, 8)), (2, (2, 3, 6, 16))):
        q, k, _ = _random_qkv(seed, *shape)
        expected = q @ k.transpose(-2, -1) / math.sqrt(shape[-1])
        given_q, given_k = q.clone(), k.clone()  # the learner's copies: changing them in place spoils nothing here
        got = fn(given_q, given_k)
        ok, msg = _close(got, expected, f"scores for q, k of shape {shape}")
        if not ok:
            msg += changed_in_place(q=(given_q, q), k=(given_k, k))
            if isinstance(got, torch.Tensor) and got.shape == expected.shape:
                if torch.allclose(got.double(), q @ k.transpose(-2, -1)):
                    return False, msg + ": you forgot to divide by sqrt(d_k), with d_k = q.shape[-1]"
            if isinstance(got, torch.Tensor) and got.shape == q.shape:
                return False, msg + ": q * k multiplies element by element; a score needs q @ k.transpose(-2, -1)"
            return False, msg
    return True, "scaled scores are right for 2-D, 3-D and 4-D inputs"


@exercise("ch02.attention")
def _attention(fn: Callable[..., torch.Tensor]) -> tuple[bool, str]:
    """``fn(q, k, v, attention_mask=None)`` returns the attention output; the mask is HF-style (1 keep, 0 pad)."""
    q, k, v = _random_qkv(3, 2, 5, 8)
    attention_mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    keep = attention_mask.bool()[:, None, :]  # (B, 1, T_k): every query sees the same keys
    expected = F.scaled_dot_product_attention(q, k, v)
    expected_masked = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
    given = [t.clone() for t in (q, k, v)]  # the learner's copies: changing them in place spoils nothing here
    got = fn(*given)
    ok, msg = _close(got, expected, "output without a mask")
    if not ok:
        note = changed_in_place(q=(given[0], q), k=(given[1], k), v=(given[2], v))
        return False, msg + note + " (scores, scale, softmax over the last dim, then weights @ v)"
    given = [t.clone() for t in (q, k, v, attention_mask)]
    got = fn(*given)
    ok, msg = _close(got, expected_masked, "output with a padding mask")
    if not ok:
        note = changed_in_place(
            q=(given[0], q), k=(given[1], k), v=(given[2], v), attention_mask=(given[3], attention_mask)
        )
        if nonfinite(got) == "NaN":
            return False, msg + note + (
                ": a row where every key is masked? attention_mask is 1 for the keys to keep and 0 for the pads; "
                "fill the scores with -inf where attention_mask[:, None, :] == 0"
            )
        return False, msg + note + (
            " (give the padded keys a score of -inf before the softmax; attention_mask has shape (B, T_k)"
            " and needs a query axis: attention_mask[:, None, :])"
        )
    return True, "matches F.scaled_dot_product_attention with and without a padding mask"


@exercise("ch02.causal_mask")
def _causal_mask(fn: Callable[[int], torch.Tensor]) -> tuple[bool, str]:
    """``fn(T)`` returns a (T, T) bool tensor, True where query i may look at key j (j <= i)."""
    for T in (1, 4, 7):
        got = fn(T)
        expected = torch.ones(T, T, dtype=torch.bool).tril()
        if got is None:
            return False, "your function returned None: replace the `...` in its body with your code"
        if isinstance(got, np.ndarray):
            return False, f"causal_mask({T}) should be a bool torch.Tensor, got a numpy array: build it with torch"
        if not isinstance(got, torch.Tensor) or got.dtype != torch.bool:
            return False, f"causal_mask({T}) should be a bool tensor, got {getattr(got, 'dtype', type(got).__name__)}"
        if got.shape != expected.shape:
            return False, f"causal_mask({T}) has shape {tuple(got.shape)}, expected {(T, T)}"
        if torch.equal(got, expected):
            continue
        if torch.equal(got, expected.T):
            return False, "this lets each token see the future and not the past: transpose it (tril, not triu)"
        return False, f"causal_mask({T}) is wrong: row i should be True in columns 0..i and False after"
    return True, "each token sees itself and the tokens before it"


@exercise("ch02.one_key")
def _one_key(out: Any) -> tuple[bool, str]:
    """The output of attention for one query q=[1,2,3], one key k=[4,5,6] and one value v=[7,8,9]."""
    expected = F.scaled_dot_product_attention(_WORKED_Q, _WORKED_K, _WORKED_V)
    out = torch.as_tensor(out, dtype=torch.float64).reshape(-1)
    if out.shape == (3,) and torch.allclose(out, torch.tensor([1.4, 3.2, 3.6], dtype=torch.float64)):
        return (
            False,
            "that is the element-wise product of made-up weights with v; with one key, what must its weight be?",
        )
    ok, msg = _close(out, expected.reshape(-1), "your output", atol=1e-4)
    if not ok:
        return False, msg + ": a softmax over a single score is exactly 1, whatever the score"
    return True, "one key gets all the weight, so the output is its value, v itself"


@exercise("ch02.spread")
def _spread(std: Any) -> tuple[bool, str]:
    """The standard deviation of q . k for independent standard normal q, k with d_k = 64 (no scaling)."""
    value = float(std)
    if math.isclose(value, 64.0, rel_tol=0.05):
        return False, "64 is the variance; the standard deviation is its square root"
    if math.isclose(value, 1.0, rel_tol=0.05):
        return False, "that is the spread after dividing by sqrt(d_k); the question asks before scaling"
    ok = math.isclose(value, 8.0, rel_tol=0.05)
    if ok:
        return True, "a sum of 64 independent unit-variance products has variance 64, so std 8"
    return False, "q . k sums d_k products of independent unit-variance numbers; add their variances"


question(
    "ch02.q1",
    "Why does scaled dot-product attention divide the scores by sqrt(d_k)?",
    [
        (
            "To make the attention weights sum to one.",
            False,
            "the softmax already makes every row sum to one, whatever the scale of the scores",
        ),
        (
            "To keep the scores' spread near 1 whatever d_k is, so the softmax does not saturate.",
            True,
            "q . k of unit-variance vectors has variance d_k; dividing by sqrt(d_k) brings it back to 1, "
            "so the softmax stays soft and its gradients do not vanish",
        ),
        (
            "To make the computation cheaper.",
            False,
            "it adds one division; the cost is in the two matrix products",
        ),
        (
            "Because the values V have dimension d_k.",
            False,
            "the values can have any dimension; the scale is about the spread of the query-key scores",
        ),
    ],
)

question(
    "ch02.q2",
    "In a causal (decoder) mask for 5 tokens, which keys may the query at position 2 (counting from 0) attend to?",
    [
        ("Positions 0, 1 and 2.", True, "itself and everything before it: row 2 of a lower-triangular mask"),
        (
            "Positions 0 and 1 only.",
            False,
            "a token may always attend to itself; otherwise the first token sees nothing",
        ),
        (
            "Positions 2, 3 and 4.",
            False,
            "that is the future, which a language model predicting the next token must not see",
        ),
        ("All five positions.", False, "that is an encoder (BERT-style) without a causal mask"),
    ],
)

question(
    "ch02.q3",
    "A sentence is padded to length 4 with attention_mask = [1, 1, 1, 0]. What weight does a real token give the pad?",
    [
        (
            "Exactly 0, and the other three weights still sum to 1.",
            True,
            "the pad's score is set to -inf before the softmax, and exp(-inf) = 0, so it drops out of the sum",
        ),
        (
            "A small weight, because the pad vector is all zeros.",
            False,
            "a zero key still gets score 0 and exp(0) = 1: without a mask the pad would take a real share",
        ),
        (
            "0.25, the same as every other token.",
            False,
            "weights depend on the scores; the mask removes the pad entirely",
        ),
    ],
)
