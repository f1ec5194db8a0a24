"""Checkers and concept questions for chapter 09, scaling and emergence.

References are written here from the definitions (two points on a log-log line, C = 6 N D, independent
digits), not taken from ``course_lib.scaling``, so a mistake the library might share is still caught.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from course_lib.exercises import exercise, question


@exercise("ch09.two_point_exponent")
def _two_point_exponent(fn: Callable[[float, float, float, float], float]) -> tuple[bool, str]:
    """``fn(n1, loss1, n2, loss2)`` returns alpha of the power law ``loss = a * n ** -alpha`` through both points."""
    cases = [(1e4, 2.0, 1e5, 1.6), (3e3, 2.5, 9e4, 2.1), (1e6, 3.0, 1e8, 2.0)]
    for n1, l1, n2, l2 in cases:
        got = fn(n1, l1, n2, l2)
        if got is None:
            return False, "your function returned None: replace the `...` in its body with your code"
        right = -math.log(l2 / l1) / math.log(n2 / n1)
        if math.isclose(float(got), right, rel_tol=1e-6):
            continue
        if math.isclose(float(got), -right, rel_tol=1e-6):
            return False, "right size, wrong sign: the loss falls as n grows, and alpha is defined positive"
        if math.isclose(float(got), (l1 - l2) / (n2 - n1), rel_tol=1e-6):
            return False, "that is the slope on linear axes; take logarithms of both n and the loss first"
        return (
            False,
            f"for ({n1:g}, {l1}) and ({n2:g}, {l2}) expected {right:.4f}, got {float(got):.4f}: "
            "alpha is minus the slope of log(loss) against log(n)",
        )
    return True, "alpha is minus the slope between the two points on log-log axes"


@exercise("ch09.chinchilla_compute")
def _chinchilla_compute(value: Any) -> tuple[bool, str]:
    """Training FLOPs of Chinchilla (70e9 parameters, 1.4e12 tokens) with C = 6 N D."""
    value = float(value)
    right = 6 * 70e9 * 1.4e12
    if math.isclose(value, right, rel_tol=0.01):
        return True, f"C = 6 N D = {right:.2e} FLOPs: 2 per parameter per token forward, 4 more backward"
    if math.isclose(value, right / 3, rel_tol=0.01):
        return False, "that is the forward pass only (2 N D); training adds the backward pass, about twice as costly"
    return False, "multiply 6 by the parameter count (70e9) and the number of training tokens (1.4e12)"


@exercise("ch09.tokens_for")
def _tokens_for(fn: Callable[[float], float]) -> tuple[bool, str]:
    """``fn(n_params)`` returns the compute-optimal number of training tokens by Chinchilla's rule of thumb."""
    for n in (1e8, 1e9, 7e10):
        got = fn(n)
        if got is None:
            return False, "your function returned None: replace the `...` in its body with your code"
        ratio = float(got) / n
        if not 15 <= ratio <= 25:
            if math.isclose(float(got), n, rel_tol=0.01):
                return False, "one token per parameter is far too few; Hoffmann et al. found about 20 per parameter"
            return (
                False,
                f"for {n:g} parameters you gave {float(got):g} tokens ({ratio:.1f} per parameter); aim for about 20",
            )
    return True, "about 20 tokens per parameter: a 70B model wants about 1.4 trillion tokens, as Chinchilla had"


@exercise("ch09.exact_from_digits")
def _exact_from_digits(fn: Callable[[float, int], float]) -> tuple[bool, str]:
    """``fn(p, k)``: exact-match rate of a k-digit answer whose digits are each right with chance p, independently."""
    for p, k in [(0.5, 4), (0.9, 4), (0.99, 10), (0.7, 1)]:
        got = fn(p, k)
        if got is None:
            return False, "your function returned None: replace the `...` in its body with your code"
        if math.isclose(float(got), p * k, rel_tol=1e-6) and k > 1:
            return False, "chances of independent events multiply; they do not add"
        if not math.isclose(float(got), p**k, rel_tol=1e-6):
            return False, f"for p={p}, k={k} expected {p**k:.4f}, got {float(got):.4f}: all k digits must be right"
    return True, "p ** k: a smooth rise in p becomes a sudden rise in exact match, steeper the longer the answer"


question(
    "ch09.q1",
    "A model family's per-digit accuracy on sums with 5-digit answers rises steadily with size, 0.5, 0.6, 0.7, 0.8, 0.9. "
    "Why does its exact-match score look like a sudden jump?",
    [
        (
            "Larger models learn a new algorithm at a critical size",
            False,
            "That is the reading Schaeffer et al. question: the per-digit numbers show no sudden change to explain.",
        ),
        (
            "Exact match is roughly p ** 5, which stays near zero and then climbs steeply as p nears 1",
            True,
            "0.5**5 = 0.03, 0.7**5 = 0.17, 0.9**5 = 0.59: a nonlinear metric turns steady progress into a jump.",
        ),
        (
            "Exact match is measured on harder problems than per-digit accuracy",
            False,
            "Both scores come from the same answers to the same problems; only the scoring differs.",
        ),
        (
            "Per-digit accuracy is inflated by guessing, so it is the misleading metric",
            False,
            "Guessing gives 10% per digit; the steady rise above that is real learning that exact match hides.",
        ),
    ],
)

question(
    "ch09.q2",
    "What did Hoffmann et al. (2022, Chinchilla) change about how to spend a fixed compute budget?",
    [
        (
            "Spend nearly all extra compute on more parameters, as Kaplan et al. (2020) suggested",
            False,
            "That was the earlier advice; it left large models such as Gopher trained on too few tokens.",
        ),
        (
            "Grow parameters and training tokens in equal proportion, about 20 tokens per parameter",
            True,
            "Chinchilla (70B, 1.4T tokens) beat Gopher (280B, 300B tokens) at the same compute.",
        ),
        (
            "Train small models for much longer, since loss does not depend on model size",
            False,
            "Loss falls with both size and data; the question is the best split between them.",
        ),
    ],
)

question(
    "ch09.q3",
    "A fit says loss = a * N ** -0.076. By what factor does the loss shrink when N grows tenfold?",
    [
        ("By 0.076", False, "The exponent is not the change itself; it sets the slope on log-log axes."),
        (
            "To 10 ** -0.076, about 0.84 of what it was, at every size",
            True,
            "A power law is scale-free: every tenfold step cuts the loss by the same fraction (straight on log axes).",
        ),
        (
            "To a tenth of what it was",
            False,
            "That would be an exponent of 1; language-model losses fall far more slowly.",
        ),
    ],
)
