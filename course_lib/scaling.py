"""Scaling laws and "emergent" abilities, measured on models small enough for a laptop (chapter 09).

``fit_power_law`` fits ``y = a * x ** -alpha`` to a sweep (loss against parameters or compute) by least
squares on log-log axes, where a power law is a straight line. The addition helpers build a task with a
sharp metric (multi-digit sums written as text) and score a model on it three ways from one forward
pass: exact match (all-or-nothing), per-digit accuracy and the log-likelihood of the right answer (both
smooth), which is what it takes to see whether an ability jumps or grows steadily with size.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import nn

from course_lib.tokenizers import CharTokenizer

ADDITION_CHARS = "0123456789+=\n"


@dataclass(frozen=True)
class PowerLaw:
    """``y = a * x ** -alpha``; ``r2`` is the fit's coefficient of determination on log-log axes."""

    a: float
    alpha: float
    r2: float

    def __call__(self, x: ArrayLike) -> np.ndarray:
        return self.a * np.asarray(x, dtype=np.float64) ** -self.alpha


def fit_power_law(x: ArrayLike, y: ArrayLike) -> PowerLaw:
    """Least-squares line through (log x, log y): the slope is ``-alpha``, the intercept ``log a``.

    Fitting in log space weighs every point by its relative error, as the log-log plot shows it; a fit on
    raw losses would let the largest loss dominate. Needs at least two distinct positive x and positive y.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"x and y must be 1-D of the same length, got shapes {x.shape} and {y.shape}")
    if len(np.unique(x)) < 2:
        raise ValueError(f"a power law needs at least two distinct x values, got {x.tolist()}")
    if (x <= 0).any() or (y <= 0).any() or not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("x and y must be finite and positive (their logarithms are fitted)")
    lx, ly = np.log(x), np.log(y)
    design = np.stack([lx, np.ones_like(lx)], axis=1)  # (n, 2): slope and intercept columns
    (slope, intercept), *_ = np.linalg.lstsq(design, ly, rcond=None)
    residual = ly - (slope * lx + intercept)
    spread = ((ly - ly.mean()) ** 2).sum()
    r2 = 1.0 - (residual**2).sum() / spread if spread > 0 else 1.0
    return PowerLaw(a=float(np.exp(intercept)), alpha=float(-slope), r2=float(r2))


# -- multi-digit addition as text -----------------------------------------------------------------------------
def addition_tokenizer() -> CharTokenizer:
    """One token per digit, plus ``+``, ``=`` and the newline that ends each problem."""
    return CharTokenizer(ADDITION_CHARS)


def addition_problems(
    n: int, n_digits: int, generator: torch.Generator, exclude: Collection[tuple[str, str]] = ()
) -> list[tuple[str, str]]:
    """``n`` random problems as (prompt, answer) pairs, e.g. ``("071+893=", "4690")`` for 3 digits.

    Operands are zero-padded to ``n_digits`` so every problem has the same layout, and the answer is
    written least significant digit first (071 + 893 = 964, written 0964 backwards as 4690): that is the
    order a person adds in, so each digit depends only on digits the model has already seen or written.
    Forward order would ask it to know the final carry before writing the first digit.

    Problems are drawn with replacement; those in ``exclude`` are never drawn. Pass the test problems
    there when drawing the training ones: with two digits there are only 10,000 problems, and 20,000
    draws would cover most of any test set.
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if not isinstance(n_digits, int) or not 1 <= n_digits <= 9:
        raise ValueError(f"n_digits must be an int from 1 to 9, got {n_digits!r}")
    high = 10**n_digits
    excluded = set(exclude)
    if sum(len(prompt) == 2 * n_digits + 2 for prompt, _ in excluded) >= high * high:  # else the loop never ends
        raise ValueError(f"exclude holds all {high * high:,} problems of {n_digits} digits; none is left to draw")
    problems: list[tuple[str, str]] = []
    while len(problems) < n:
        operands = torch.randint(high, (n - len(problems), 2), generator=generator).tolist()
        drawn = [(f"{a:0{n_digits}d}+{b:0{n_digits}d}=", f"{a + b:0{n_digits + 1}d}"[::-1]) for a, b in operands]
        problems += [problem for problem in drawn if problem not in excluded]
    return problems


def addition_stream(problems: list[tuple[str, str]], tokenizer: CharTokenizer) -> torch.Tensor:
    """All problems as one token stream, one per line, for ``course_lib.train`` to cut windows from."""
    return torch.tensor(tokenizer.encode("".join(p + a + "\n" for p, a in problems)), dtype=torch.long)


def _layout(problems: list[tuple[str, str]]) -> tuple[int, int]:
    """The (prompt, answer) lengths every problem shares: one row per problem needs one layout."""
    if not problems:
        raise ValueError("problems is empty; build some with addition_problems(n, n_digits, generator)")
    lengths = {(len(p), len(a)) for p, a in problems}
    if len(lengths) != 1:
        raise ValueError(
            f"all problems must share one layout (prompt, answer lengths), got {sorted(lengths)}; "
            "build them with one n_digits"
        )
    ((n_prompt, n_answer),) = lengths
    return n_prompt, n_answer


def addition_examples(problems: list[tuple[str, str]], tokenizer: CharTokenizer) -> tuple[torch.Tensor, torch.Tensor]:
    """One problem per row as ``(inputs, targets)``, both ``(N, L - 1)``, for ``course_lib.train``.

    Targets are the next characters, with the prompt's positions set to -100 so the loss ignores them: the
    operands are random and cannot be predicted, and training on them would only add noise to the gradient.
    Every step then teaches the answer digits alone, which makes the task learnable in a few hundred steps.
    """
    n_prompt, _ = _layout(problems)
    ids = torch.tensor([tokenizer.encode(p + a) for p, a in problems])  # (N, L), one layout for all
    targets = ids[:, 1:].clone()
    targets[:, : n_prompt - 1] = -100  # position t predicts token t + 1; the first answer digit is token n_prompt
    return ids[:, :-1], targets


@dataclass(frozen=True)
class AdditionScores:
    """One model's results on a set of problems, under a sharp and two smooth metrics."""

    exact_match: float  # fraction of problems with every answer digit right
    digit_accuracy: float  # fraction of answer digits right
    log_likelihood: float  # mean log-probability (nats) of the whole right answer, per problem


@torch.no_grad()
def score_addition(
    model: nn.Module, tokenizer: CharTokenizer, problems: list[tuple[str, str]], context: str = ""
) -> AdditionScores:
    """Score ``model`` on ``problems`` with one teacher-forced forward pass.

    The model reads ``context + prompt + answer``; at each answer position we take its most likely digit
    given the right digits before it. A problem counts as an exact match when all those digits are right,
    which is exactly when greedy decoding would write the whole answer, so no sampling loop is needed.
    ``context`` (e.g. a few solved problems ending in a newline) puts the prompt mid-line as in training.
    """
    n_prompt, n_answer = _layout(problems)
    prefix = len(tokenizer.encode(context)) if context else 0
    ids = torch.tensor([tokenizer.encode(context + p + a) for p, a in problems])  # (N, L)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    logits, _ = model(ids[:, :-1].to(device))  # (N, L-1, V): position t predicts token t+1
    model.train(was_training)
    start = prefix + n_prompt  # index of the first answer token in ids
    answer_logits = logits[:, start - 1 : start - 1 + n_answer].float().cpu()  # (N, n_answer, V)
    target = ids[:, start : start + n_answer]  # (N, n_answer)
    correct = answer_logits.argmax(-1) == target  # (N, n_answer)
    log_probs = torch.log_softmax(answer_logits, -1).gather(-1, target[..., None])[..., 0]  # (N, n_answer)
    return AdditionScores(
        exact_match=correct.all(-1).float().mean().item(),
        digit_accuracy=correct.float().mean().item(),
        log_likelihood=log_probs.sum(-1).mean().item(),
    )
