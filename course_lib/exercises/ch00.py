"""Exercises and concept questions of chapter 00 (language and thought: n-grams, perplexity, smoothing)."""

from __future__ import annotations

import math
import operator
import random
from collections import Counter

import numpy as np

from course_lib.exercises import exercise, nonfinite, question

UNWRITTEN = "your function returns None: write its body in place of the `...`"


def _reference_next_char_probs(text: str, char: str) -> dict[str, float]:
    after = Counter(b for a, b in zip(text, text[1:], strict=False) if a == char)
    total = sum(after.values())
    return {c: n / total for c, n in after.items()}


@exercise("ch00.next_char_probs")
def _next_char_probs(fn) -> tuple[bool, str]:
    rng = random.Random(0)
    cases = [("to be or not to be", "o"), ("abracadabra", "a"), ("mississippi", "s")]
    cases += [("".join(rng.choice("ab c") for _ in range(40)), "b") for _ in range(3)]
    for text, char in cases:
        want = _reference_next_char_probs(text, char)
        got = fn(text, char)
        if got is None:
            return False, UNWRITTEN
        if not isinstance(got, dict):
            return False, f"return a dict {{next character: probability}}, not a {type(got).__name__}"
        bad = nonfinite(list(got.values()))
        if bad:
            return (
                False,
                f"for text={text!r}, char={char!r} your probabilities contain {bad}: divide each count by the total count",
            )
        if abs(sum(got.values()) - 1) > 1e-9:
            return False, (
                f"for text={text!r}, char={char!r} your probabilities sum to {sum(got.values()):.3f}; divide each "
                f"count by the number of times {char!r} is followed by anything"
            )
        got = {c: p for c, p in got.items() if p > 0}
        if set(got) != set(want) or any(abs(got[c] - want[c]) > 1e-9 for c in want):
            return False, (
                f"for text={text!r}, char={char!r} expected {want}, got {got}; count the pairs zip(text, text[1:]) "
                "whose first character is char"
            )
    return True, "your bigram probabilities match counting by hand on six texts"


@exercise("ch00.perplexity")
def _perplexity(fn) -> tuple[bool, str]:
    rng = np.random.default_rng(0)
    for probs in ([0.5, 0.5], [1 / 63] * 10, rng.uniform(0.01, 1, 20).tolist()):
        want = math.exp(-sum(math.log(p) for p in probs) / len(probs))
        got = fn(probs)
        if got is None:
            return False, UNWRITTEN
        got = float(got)
        if not math.isclose(got, want, rel_tol=1e-6):
            nll = math.log(want)
            hint = "take the mean of -log(p) over the tokens, then exp of that mean"
            if math.isclose(got, nll, rel_tol=1e-6):
                hint = "that is the mean negative log-likelihood (the cross-entropy); perplexity is exp of it"
            elif math.isclose(got, 1 / want, rel_tol=1e-6):
                hint = "check the sign: perplexity is exp(MINUS the mean log-probability), so it is >= 1"
            elif math.isclose(got, math.exp(nll * len(probs)), rel_tol=1e-6):
                hint = "average over the tokens: use the mean of -log(p), not the sum"
            shown = np.round(probs[:4], 3).tolist()
            return False, f"for probabilities {shown}... expected {want:.4f}, got {got:.4f}; {hint}"
    return True, "perplexity = exp(mean negative log-likelihood); a fair coin scores 2, a uniform 63-way guess 63"


@exercise("ch00.add_k")
def _add_k(fn) -> tuple[bool, str]:
    for counts, k in (([3, 1, 0, 0], 1.0), ([0, 0, 0], 0.5), ([10, 0, 5, 0, 1], 0.01)):
        c = np.asarray(counts, dtype=np.float64)
        want = (c + k) / (c.sum() + k * len(c))
        got = fn(np.array(counts), k)
        if got is None:
            return False, UNWRITTEN
        got = np.asarray(got, dtype=np.float64)
        if got.shape != want.shape:
            return False, f"return one probability per vocabulary entry: shape {want.shape}, not {got.shape}"
        if not np.allclose(got, want, atol=1e-12):
            hint = "add k to every count, and k * V to the total, so the result still sums to 1"
            if np.allclose(got, c / (c.sum() + k * len(c)), atol=1e-12):
                hint = "the denominator is right; add k to every count in the numerator too: (count + k)"
            elif abs(got.sum() - 1) > 1e-9:
                hint = f"your probabilities sum to {got.sum():.3f}, not 1: the denominator needs + k * V"
            return False, f"for counts={counts}, k={k} expected {np.round(want, 4).tolist()}; {hint}"
    return True, "add-k smoothing: (count + k) / (total + k V); even a context never seen gets a uniform guess"


@exercise("ch00.window")
def _window(n) -> tuple[bool, str]:
    try:
        n = operator.index(n)  # int, numpy or torch integers; not 8.0, and not an object that equals everything
    except TypeError:
        return False, f"answer with a whole number, not {type(n).__name__}"
    if n == 8:
        return True, "'\\n23+58=' is 7 characters, and the 8th token of the window is the one predicted"
    if n == 7:
        return False, "7 tokens hold only 6 of context: an n-gram's window includes the token it predicts"
    return False, "count the characters of '\\n23+58=' (the newline that ends the previous line is one), then add 1"


question(
    "ch00.q1",
    "A 6-gram model without smoothing (k = 0) has a validation perplexity of infinity. Why?",
    [
        (
            "It overfits: its training perplexity is too low",
            False,
            "a low training perplexity alone never makes the "
            "validation perplexity infinite; something must get probability exactly zero",
        ),
        (
            "Some 6-gram of the validation text never occurs in the training text, so it gets probability 0, "
            "and -log 0 is infinite",
            True,
            "one zero in the product makes the whole text impossible; smoothing keeps a "
            "little probability for every n-gram",
        ),
        (
            "Perplexity is only defined for n <= 5",
            False,
            "perplexity is defined for any model that assigns probabilities; the n-gram order does not matter",
        ),
        (
            "The validation text uses characters the training text lacks",
            False,
            "the chapter checks this: every "
            "validation character is in the training vocabulary, yet 6-grams made of known characters can still be new",
        ),
    ],
)

question(
    "ch00.q2",
    "A model answers 100% of the additions it was trained on and almost none of the new ones, yet every answer "
    "it writes is a well-formed number. What does this show?",
    [
        (
            "Formal competence without functional competence on this task",
            True,
            "it has the form of the task's "
            "language (answers look right) and recites what it saw, but has no procedure for new problems",
        ),
        (
            "Functional competence: it solved the task",
            False,
            "solving means getting new problems right; the held-out accuracy says it did not",
        ),
        (
            "Neither: the answers are random noise",
            False,
            "noise would not be well-formed numbers every time, nor 100% right on the training problems",
        ),
    ],
)

question(
    "ch00.q3",
    "A character-level model has a perplexity of 4.0 on some text. What does that mean?",
    [
        (
            "It gets 4% of the characters wrong",
            False,
            "perplexity is not an error rate; it is exp of the average "
            "surprise (negative log-probability) per character",
        ),
        (
            "On average it is as unsure as if it chose uniformly among 4 characters at each step",
            True,
            "a uniform choice among m options has perplexity exactly m, which gives the number this meaning",
        ),
        (
            "It needs 4 characters of context",
            False,
            "the context length is the model's n - 1, a design choice; perplexity measures how well it predicts",
        ),
    ],
)
