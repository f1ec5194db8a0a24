"""Checkers and concept questions for chapter 05, GPT pretraining.

References are written here from the definitions (a slice of the token stream; softmax restricted to the
kept tokens), independent of ``course_lib.data`` and ``course_lib.generate``, so a mistake the library
might share is still caught.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from course_lib.exercises import exercise, question

_GPT2_VOCAB = 50257


def _probs_verdict(got: Any, expected: torch.Tensor, what: str) -> tuple[bool, str] | None:
    """A verdict if ``got`` is missing, misshapen or not a distribution; None if it is worth comparing."""
    if got is None:
        return False, "your function returned None: replace the `...` in its body with your code"
    if not isinstance(got, torch.Tensor):
        return False, f"{what} should return a torch.Tensor, got {type(got).__name__}"
    if got.shape != expected.shape:
        return False, f"{what} returned shape {tuple(got.shape)}, expected {tuple(expected.shape)}"
    if (got < 0).any() or not math.isclose(got.sum().item(), 1.0, abs_tol=1e-5):
        return False, f"{what} should return probabilities: non-negative and summing to 1 (renormalise after cutting)"
    return None


@exercise("ch05.init_loss")
def _init_loss(value: Any) -> tuple[bool, str]:
    """The loss of a uniform guess over GPT-2's 50,257 tokens: ln(50257) nats."""
    value = float(value)
    right = math.log(_GPT2_VOCAB)
    if math.isclose(value, right, rel_tol=0.005):  # 10.8 and 10.83 are both right
        return True, f"ln(50257) = {right:.3f} nats: every token gets probability 1/50257 before training"
    if math.isclose(value, math.log2(_GPT2_VOCAB), abs_tol=0.01):
        return False, "that is in bits (log base 2); the cross-entropy loss uses the natural logarithm"
    if math.isclose(value, 1 / _GPT2_VOCAB, rel_tol=0.01):
        return False, "that is the probability of each token; the loss is -ln of that probability"
    if math.isclose(value, right, rel_tol=0.05):
        return False, "close: compute ln(50257) and give it to two decimals"
    return False, "an untrained model gives every token the same probability 1/V; the loss is -ln(1/V)"


@exercise("ch05.window")
def _window(fn: Callable[[torch.Tensor, int, int], tuple[torch.Tensor, torch.Tensor]]) -> tuple[bool, str]:
    """``fn(tokens, start, block_size)`` returns x = tokens[start:start+T] and y = tokens[start+1:start+T+1]."""
    tokens = torch.arange(100, 140)
    for start, T in [(0, 8), (5, 4), (31, 8)]:
        got = fn(tokens, start, T)
        if got is None:
            return False, "your function returned None: replace the `...` in its body with your code"
        if not isinstance(got, tuple) or len(got) != 2:
            return False, "return a pair (x, y)"
        x, y = (torch.as_tensor(t) for t in got)
        want_x, want_y = tokens[start : start + T], tokens[start + 1 : start + T + 1]
        if x.shape != (T,) or y.shape != (T,):
            return (
                False,
                f"with block_size={T}, x and y should each hold {T} tokens, got {tuple(x.shape)} and {tuple(y.shape)}",
            )
        if torch.equal(x, want_x) and torch.equal(y, want_x):
            return False, "y must be the targets: the same window shifted by one token, y[t] = tokens[start + t + 1]"
        if not (torch.equal(x, want_x) and torch.equal(y, want_y)):
            return (
                False,
                f"for start={start}, block_size={T}: x should be tokens[{start}:{start + T}], y tokens[{start + 1}:{start + T + 1}]",
            )
    return True, "x is the window, y the same window shifted by one: T next-token examples at once"


@exercise("ch05.top_k")
def _top_k(fn: Callable[[torch.Tensor, int], torch.Tensor]) -> tuple[bool, str]:
    """``fn(logits, k)``: softmax over the k largest logits, 0 elsewhere."""
    logits = torch.tensor([1.5, -0.3, 2.7, 0.1, 2.2, -1.0, 0.9], dtype=torch.float64)
    for k in (1, 3, 7):
        kept = logits.argsort(descending=True)[:k]
        expected = torch.zeros_like(logits)
        expected[kept] = torch.softmax(logits[kept], dim=0)
        got = fn(logits.clone(), k)
        verdict = _probs_verdict(got, expected, f"top_k_probs(logits, {k})")
        if verdict:
            return verdict
        if not torch.allclose(got.double(), expected, atol=1e-6):
            if ((got > 0) != (expected > 0)).any():
                return False, f"with k={k} exactly the {k} largest logits should keep a non-zero probability"
            return (
                False,
                f"with k={k} the kept tokens are right but their probabilities are not: softmax over them only",
            )
    return True, "the k most likely tokens, renormalised; k = 1 is greedy decoding and k = V changes nothing"


@exercise("ch05.top_p")
def _top_p(fn: Callable[[torch.Tensor, float], torch.Tensor]) -> tuple[bool, str]:
    """``fn(probs, p)``: keep the smallest set of most likely tokens whose mass reaches p, renormalised."""
    probs = torch.tensor([0.05, 0.4, 0.1, 0.25, 0.15, 0.05], dtype=torch.float64)  # sorted: .4 .25 .15 .1 .05 .05
    cases = {0.3: [1], 0.6: [1, 3], 0.66: [1, 3, 4], 0.85: [1, 3, 4, 2], 0.99: [0, 1, 2, 3, 4, 5]}  # no p on a boundary
    for p, kept in cases.items():
        expected = torch.zeros_like(probs)
        expected[kept] = probs[kept] / probs[kept].sum()
        got = fn(probs.clone(), p)
        verdict = _probs_verdict(got, expected, f"top_p_probs(probs, {p})")
        if verdict:
            return verdict
        if not torch.allclose(got.double(), expected, atol=1e-6):
            n_got, n_want = int((got > 0).sum()), len(kept)
            if n_got == n_want - 1:
                return False, (
                    f"with p={p} you kept one token too few: keep tokens until their total reaches p, "
                    "including the token that crosses it"
                )
            if n_got == n_want + 1:
                return False, f"with p={p} you kept one token too many: stop as soon as the kept total reaches p"
            return (
                False,
                f"with p={p} the most likely tokens {kept} (by index) should be kept; sort by probability first",
            )
    return True, "the nucleus adapts its size: one token when the model is sure, many when it is not"


question(
    "ch05.q1",
    "An untrained character-level GPT with 63 characters starts at a loss of about 4.14. Why?",
    [
        (
            "Its small random weights make every logit close to 0, so it gives each character probability about 1/63, and -ln(1/63) = 4.14",
            True,
            "so ln V is the loss of a perfectly uncommitted guess; a much larger initial loss means confidently wrong predictions",
        ),
        (
            "4.14 is the entropy of English text",
            False,
            "English has about 1 to 1.5 bits (0.7 to 1 nat) per character for a good model; 4.14 is the loss of a uniform guess",
        ),
        (
            "The loss always starts at ln 63 because the optimiser sets it there",
            False,
            "nothing is optimised at step 0; the value follows from near-zero logits",
        ),
        (
            "Cross-entropy cannot exceed ln V",
            False,
            "it can be far larger: a model confidently wrong gets -ln of a tiny probability",
        ),
    ],
)

question(
    "ch05.q2",
    "What does sampling with a temperature below 1 (say 0.5) do?",
    [
        ("It makes the text more random", False, "that is a temperature above 1, which flattens the distribution"),
        (
            "It divides the logits by 0.5, which sharpens the distribution towards the most likely tokens; towards 0 it becomes greedy decoding",
            True,
            "the order of the tokens stays the same; only how strongly the top ones are preferred changes",
        ),
        (
            "It changes which token is most likely",
            False,
            "dividing all logits by the same positive number keeps their order",
        ),
        ("It makes generation faster", False, "the model runs the same; only the final softmax changes"),
    ],
)

question(
    "ch05.q3",
    "Why is generating with a KV cache faster, and why is its output the same?",
    [
        (
            "It stores the keys and values of earlier tokens in every layer, so each step computes them only for the new token; attention still reads all of them, so nothing changes",
            True,
            "n new tokens cost about n token-forwards instead of n^2 / 2",
        ),
        (
            "It caches the logits of earlier steps and reuses them",
            False,
            "the logits at the new position depend on the new token, so they must be computed each step",
        ),
        (
            "It attends only to the most recent tokens",
            False,
            "every earlier token is still attended to; only recomputing their keys and values is skipped",
        ),
        (
            "It runs the model in lower precision",
            False,
            "the cache changes no precision; cached and uncached greedy outputs are identical",
        ),
    ],
)
