"""Checkers and concept questions for chapter 10, modern LLMs and their limits.

References are independent of the learner's path through ``course_lib``: PyTorch's ``F.rms_norm``,
the ``gguf`` package's own Q4_1 dequantizer, and arithmetic on SmolLM2's published shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from course_lib.exercises import changed_in_place, dtype_mismatch, exercise, missed, question

# SmolLM2-135M's shape (its GGUF metadata): 30 blocks, width 576, 9 query and 3 key/value heads of 64, SwiGLU 1536
_N_LAYER, _N_EMBD, _N_KV_HEAD, _HEAD_DIM, _D_FF = 30, 576, 3, 64, 1536


def _number(got: Any, expected: float, what: str, rel: float = 0.0) -> tuple[bool, str]:
    if isinstance(got, bool) or not isinstance(got, (int, float, np.integer, np.floating)):
        return False, f"{what} should be a number, got {type(got).__name__}"
    if abs(got - expected) <= rel * abs(expected):
        return True, f"{what} = {expected:,}"
    return False, f"{what} is {got:,}, which is not right"


@exercise("ch10.rmsnorm")
def _rmsnorm(fn: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]) -> tuple[bool, str]:
    """``fn(x, weight, eps)`` normalises the last dimension by its root mean square, then scales."""
    g = torch.Generator().manual_seed(10)
    for shape, eps in (((4,), 1e-5), ((3, 8), 1e-6), ((2, 5, 16), 0.1)):
        x = 3 * torch.randn(*shape, generator=g, dtype=torch.float64) + 1
        weight = torch.randn(shape[-1], generator=g, dtype=torch.float64)
        expected = F.rms_norm(x, (shape[-1],), weight, eps)  # before the learner's call, which gets copies
        given_x, given_weight = x.clone(), weight.clone()
        got = fn(given_x, given_weight, eps)
        if got is None:
            return False, "your function returned None: replace the `...` with your code"
        if not isinstance(got, torch.Tensor) or got.shape != x.shape:
            return False, f"for x of shape {shape} return a tensor of the same shape"
        hint = dtype_mismatch(got, expected)
        if hint:
            return False, hint
        if torch.allclose(got, expected, atol=1e-8):
            continue
        if torch.allclose(got, F.layer_norm(x, (shape[-1],), weight, None, eps), atol=1e-8):
            return False, "that is LayerNorm: RMSNorm does not subtract the mean"
        no_eps = x / x.pow(2).mean(-1, keepdim=True).sqrt() * weight
        if torch.allclose(got, no_eps, atol=1e-8):
            return False, "add eps inside the square root: sqrt(mean(x**2) + eps)"
        note = changed_in_place(x=(given_x, x), weight=(given_weight, weight))
        return missed(f"for x of shape {shape} (eps={eps})", got, expected, note)
    return True, "matches F.rms_norm for 1-D, 2-D and 3-D inputs"


@exercise("ch10.swiglu_params")
def _swiglu_params(got: Any) -> tuple[bool, str]:
    expected = 3 * _N_EMBD * _D_FF
    ok, msg = _number(got, expected, "one SwiGLU MLP's weights")
    if not ok and got == 2 * _N_EMBD * _D_FF:
        msg += ": SwiGLU has three matrices (gate, up, down), not two"
    return ok, msg + ("" if ok else "; hint: three matrices of c.n_embd x c.d_ff")


@exercise("ch10.kv_cache_mb")
def _kv_cache_mb(got: Any) -> tuple[bool, str]:
    per_token = _N_LAYER * 2 * _N_KV_HEAD * _HEAD_DIM * 2  # layers x (keys, values) x heads x size x 2 bytes
    expected = per_token * 2048 / 1e6
    ok, msg = _number(got, expected, "the KV cache in MB", rel=0.01)
    if ok:
        return True, f"{expected:.1f} MB; without grouped-query attention (9 heads) it would be {3 * expected:.1f} MB"
    if isinstance(got, (int, float)) and abs(got - 3 * expected) <= 0.01 * 3 * expected:
        return False, msg + ": that uses 9 heads; SmolLM2 caches only its 3 key/value heads"
    if isinstance(got, (int, float)) and abs(got - expected / 2) <= 0.01 * expected:
        return False, msg + ": count both the keys and the values"
    return False, msg + "; hint: layers x 2 (keys and values) x key/value heads x head size x tokens x 2 bytes"


def _random_q4_1_blocks(n: int) -> np.ndarray:
    from gguf import GGMLQuantizationType, quants

    w = np.random.default_rng(7).standard_normal((n, 32)).astype(np.float32)
    return quants.quantize(w, GGMLQuantizationType.Q4_1)  # (n, 20) uint8


@exercise("ch10.q4_1_block")
def _q4_1_block(fn: Callable[[np.ndarray], np.ndarray]) -> tuple[bool, str]:
    from gguf import GGMLQuantizationType, quants

    blocks = _random_q4_1_blocks(4)
    expected = quants.dequantize(blocks, GGMLQuantizationType.Q4_1)  # (4, 32)
    for i, raw in enumerate(blocks):
        got = fn(raw.copy())
        if got is None:
            return False, "your function returned None: replace the `...` with your code"
        got = np.asarray(got, dtype=np.float64)
        if got.shape != (32,):
            return False, f"return the 32 weights of the block as a 1-D array, got shape {got.shape}"
        if np.allclose(got, expected[i], atol=1e-6):
            continue
        if np.allclose(np.sort(got), np.sort(expected[i]), atol=1e-6):
            return False, "right values, wrong order: low nibbles are weights 0-15, high nibbles weights 16-31"
        d, m = raw[0:2].view(np.float16)[0], raw[2:4].view(np.float16)[0]
        codes = np.concatenate([raw[4:20] & 0x0F, raw[4:20] >> 4]).astype(np.float16)
        if np.array_equal(got, (d * codes + m).astype(np.float64)):  # the same formula, rounded to float16
            return False, (
                f"block {i} is rounded to float16: d and m are float16, so d * code + m is computed in float16; "
                "convert d and m to float32 before multiplying (d.astype(np.float32))"
            )
        return False, f"block {i} is off by up to {np.abs(got - expected[i]).max():.3g}; w = d * code + m"
    return True, "decoded exactly like the gguf package's Q4_1"


question(
    "ch10.q1",
    "What does grouped-query attention (9 query heads sharing 3 key/value heads) save?",
    [
        ("Parameters in the MLP", False, "The MLP is untouched; GQA changes only the key and value projections."),
        (
            "Memory for the KV cache, and the time to read it",
            True,
            "Only key/value heads are cached, so the cache is 3x smaller; at long contexts and large batches "
            "the cache, not the weights, fills memory and its reading dominates decoding time.",
        ),
        ("It makes attention scores depend on relative position", False, "That is what RoPE does."),
        ("It removes the need for a causal mask", False, "Decoding still must not look at future tokens."),
    ],
)

question(
    "ch10.q2",
    "SmolLM2 miscounts the r's in 'strawberry'. What is the most direct reason this is hard for it?",
    [
        ("It has never seen the word strawberry", False, "It has; it even spells it correctly in its reply."),
        (
            "It reads tokens, not letters: it must have memorised how each token is spelled to count letters",
            True,
            "'strawberry' reaches the model as two or three token ids; nothing in an id says which letters it holds. "
            "Spelling letter by letter first (one token per letter) helps a lot.",
        ),
        ("Greedy decoding always picks wrong numbers", False, "Greedy decoding picks the model's most likely answer."),
        ("4-bit quantization destroyed its counting ability", False, "It would fail the same way in 16 bits."),
    ],
)

question(
    "ch10.q3",
    "The logit lens reads a prediction off the residual stream after block 12. What does it compute?",
    [
        ("It trains a classifier on layer 12", False, "That is a probe (or the tuned lens); the lens trains nothing."),
        (
            "It applies the model's final RMSNorm and output layer to that state, as if blocks 13-30 were skipped",
            True,
            "Every block adds to the same residual stream, so the final readout can be applied to any partial sum.",
        ),
        ("It shows block 12's attention weights", False, "Those are another view; the lens reads the stream."),
        ("It runs the model on the first 12 tokens only", False, "The lens cuts the depth, not the sequence."),
    ],
)
