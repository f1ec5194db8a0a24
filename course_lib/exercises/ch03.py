"""Checkers and concept questions for chapter 03, multi-head attention.

References are plain torch reshapes and arithmetic on the configuration, independent of
``course_lib.attention``, so the checkers still catch a mistake the library might share.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from course_lib.exercises import exercise, question

# GPT-2 small: the configuration the numeric exercises ask about
_N_EMBD, _N_HEAD, _N_LAYER, _CONTEXT = 768, 12, 12, 1024


def _tensor_answer(got: Any, expected: torch.Tensor, what: str) -> tuple[bool, str] | None:
    """A verdict if ``got`` is missing or misshapen; None if it is a tensor of the right shape."""
    if got is None:
        return False, "your function returned None: replace the `...` in its body with your code"
    if not isinstance(got, torch.Tensor):
        return False, f"{what} should be a torch.Tensor, got {type(got).__name__}"
    if got.shape != expected.shape:
        return False, f"{what} has shape {tuple(got.shape)}, expected {tuple(expected.shape)}"
    return None


@exercise("ch03.split_heads")
def _split_heads(fn: Callable[[torch.Tensor, int], torch.Tensor]) -> tuple[bool, str]:
    """``fn(x, n_head)`` turns (B, T, C) into (B, n_head, T, C // n_head), head h holding channels h*hs..(h+1)*hs."""
    B, T, C, nh = 2, 5, 12, 3
    x = torch.arange(B * T * C, dtype=torch.float32).reshape(B, T, C)
    expected = x.view(B, T, nh, C // nh).transpose(1, 2)  # (B, nh, T, hs)
    got = fn(x, nh)
    verdict = _tensor_answer(got, expected, f"split_heads(x of shape {(B, T, C)}, {nh})")
    if verdict:
        return verdict
    if torch.equal(got, x.reshape(B, nh, T, C // nh)):
        return False, (
            "a plain reshape to (B, nh, T, hs) mixes channels of different tokens into one row; "
            "split the channels first, (B, T, nh, hs), then swap the T and nh axes"
        )
    if not torch.equal(got, expected):
        return (
            False,
            "the shape is right but the numbers are in the wrong places: head h should hold channels h*hs..(h+1)*hs",
        )
    return True, "each head gets its own slice of every token's channels"


@exercise("ch03.merge_heads")
def _merge_heads(fn: Callable[[torch.Tensor], torch.Tensor]) -> tuple[bool, str]:
    """``fn(y)`` turns (B, nh, T, hs) back into (B, T, nh * hs), the heads' outputs side by side."""
    B, nh, T, hs = 2, 3, 5, 4
    y = torch.arange(B * nh * T * hs, dtype=torch.float32).reshape(B, nh, T, hs)
    expected = y.transpose(1, 2).reshape(B, T, nh * hs)
    got = fn(y)
    verdict = _tensor_answer(got, expected, f"merge_heads(y of shape {(B, nh, T, hs)})")
    if verdict:
        return verdict
    if torch.equal(got, y.reshape(B, T, nh * hs)):
        return False, "a plain reshape mixes tokens; swap the nh and T axes first (transpose(1, 2)), then reshape"
    if not torch.equal(got, expected):
        return False, "the shape is right but the order is not: token t should hold head 0's output, then head 1's, ..."
    return True, "the heads' outputs sit side by side for every token, ready for the output projection"


@exercise("ch03.n_params")
def _n_params(n: Any) -> tuple[bool, str]:
    """The number of parameters of one multi-head attention layer of GPT-2 small (biases included)."""
    C = _N_EMBD
    n = int(n)
    right = 4 * C * C + 4 * C  # q, k, v and output projections: C x C weights and C biases each
    hints = {
        4 * C * C: "you counted the weights; every projection also has a bias of size C",
        3 * C * C + 3 * C: "that is only the fused q, k, v projection; the output projection c_proj adds C*C + C",
        _N_HEAD * right: "the heads split the C channels between them; they do not each get full-size projections",
    }
    if n == right:
        return True, f"4 * 768^2 + 4 * 768 = {right:,}: the number of heads does not change it"
    return False, hints.get(
        n, "count the fused q/k/v projection (C -> 3C) and the output projection (C -> C), with biases"
    )


@exercise("ch03.kv_cache_bytes")
def _kv_cache_bytes(n: Any) -> tuple[bool, str]:
    """Bytes of KV cache for one 1024-token sequence in GPT-2 small, float32."""
    per_token_per_layer = 2 * _N_EMBD  # one key and one value vector, all heads together
    right = per_token_per_layer * _N_LAYER * _CONTEXT * 4
    n = int(n)
    hints = {
        right // 2: "half the right size: a cache keeps both the keys and the values, and float32 takes 4 bytes "
        "per number (2 is float16)",
        right // _N_LAYER: "every one of the 12 layers has its own cache",
        right // 4: "that is the number of floats; a float32 takes 4 bytes",
        right * _N_HEAD: "the heads split the 768 channels; do not multiply by the number of heads again",
    }
    if n == right:
        return True, f"2 x 12 layers x 1024 tokens x 768 x 4 bytes = {right:,} bytes (72 MiB) per sequence"
    return False, hints.get(n, "multiply: (key + value) x layers x tokens x channels x bytes per float")


question(
    "ch03.q1",
    "A layer with n_embd = 512 uses 8 heads instead of 1. Compared with the single head, the 8 heads have:",
    [
        (
            "8 times the parameters, because each head has its own projections.",
            False,
            "each head projects to 512 / 8 = 64 dimensions, so the 8 heads together use the same 512 x 512 matrices",
        ),
        (
            "The same parameters, but 8 separate attention patterns of 64 dimensions each.",
            True,
            "the channels are split between the heads: same projections, same cost, but 8 softmaxes, so each "
            "token can look at 8 places at once",
        ),
        (
            "Fewer parameters, because each head is smaller.",
            False,
            "the heads are smaller, but there are 8 of them: the total is unchanged",
        ),
    ],
)

question(
    "ch03.q2",
    "When a decoder generates one token at a time with a KV cache, what does the cache hold, and why?",
    [
        (
            "The keys and values of the earlier tokens: every new query needs them, and they never change.",
            True,
            "with a causal mask earlier tokens' k and v do not depend on later tokens, so they are computed once",
        ),
        (
            "The queries of the earlier tokens, to compare with the new key.",
            False,
            "only the new token's query is needed: the outputs for earlier positions were already produced",
        ),
        (
            "The attention weights of the earlier steps.",
            False,
            "each step needs a new row of weights (the new query against every key), so old rows are no help",
        ),
    ],
)

question(
    "ch03.q3",
    "Doubling the context length T multiplies the work of computing the attention scores QK^T by about:",
    [
        ("2", False, "that is the projections' growth; the score matrix is T x T"),
        ("4", True, "T x T scores: twice the queries against twice the keys"),
        ("8", False, "the head size d does not change with T; the work grows as T^2 d"),
    ],
)
