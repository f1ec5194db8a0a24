"""Checked exercises and concept questions.

A notebook's exercise cell ends with ``check("ch02.scale", my_answer)``. The checker says whether the
answer is right and, if not, gives a hint; an exercise left as ``...`` reports "not yet" instead of
raising, so a notebook passes its tests as shipped. Each chapter's checkers live in ``chNN.py`` beside
this file and are imported on first use, so adding a chapter never edits this file.

Quick concept questions work the same way: ``quiz("ch02.q1")`` shows a multiple-choice widget and
``answer("ch02.q1", "b")`` prints the explanation for that choice without needing a widget.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

Checker = Callable[[Any], "Result"]
_CHECKERS: dict[str, Checker] = {}
_QUESTIONS: dict[str, Question] = {}
_PASSED: dict[str, bool] = {}  # what this kernel has seen: exercise name -> passed


@dataclass(frozen=True)
class Result:
    """The verdict on one answer: ``passed`` and a message that explains it."""

    name: str
    passed: bool
    message: str

    def __str__(self) -> str:
        mark = "correct" if self.passed else "not yet"
        return f"[{self.name}] {mark}: {self.message}"

    def _repr_pretty_(self, printer, cycle) -> None:  # IPython shows str(), not the dataclass repr
        printer.text(str(self))


@dataclass(frozen=True)
class Choice:
    text: str
    correct: bool
    why: str


@dataclass(frozen=True)
class Question:
    name: str
    prompt: str
    choices: tuple[Choice, ...]


class LearnerRaised(Exception):
    """An exception raised inside the learner's function (``.exc``), told apart from the checker's own errors."""

    def __init__(self, exc: Exception) -> None:
        super().__init__(f"{type(exc).__name__}: {exc}")
        self.exc = exc


def _guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn``, with whatever it raises wrapped in ``LearnerRaised``."""

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise LearnerRaised(exc) from exc

    return call


def exercise(name: str) -> Callable[[Checker], Checker]:
    """Register ``fn(answer) -> (passed, message)`` as the checker of exercise ``name``.

    A checker whose parameter is named ``fn`` asks for a function: it gets the learner's function wrapped so
    that what it raises reaches ``check`` as ``LearnerRaised``, and a value instead of a function is refused.
    """

    def register(fn: Callable[[Any], tuple[bool, str]]) -> Checker:
        takes_function = next(iter(inspect.signature(fn).parameters), None) == "fn"

        def checker(answer: Any) -> Result:
            if takes_function:
                if not callable(answer):
                    return Result(
                        name,
                        False,
                        f"pass the function itself, not its result: check({name!r}, my_fn), not my_fn(...) "
                        f"(got a {type(answer).__name__})",
                    )
                answer = _guarded(answer)
            passed, message = fn(answer)
            return Result(name, passed, message)

        _CHECKERS[name] = checker
        return checker

    return register


def question(name: str, prompt: str, choices: list[tuple[str, bool, str]]) -> None:
    """Register a multiple-choice question: ``choices`` holds (text, is_correct, explanation)."""
    if sum(correct for _, correct, _ in choices) != 1:
        raise ValueError(f"question {name!r} needs exactly one correct choice")
    _QUESTIONS[name] = Question(name, prompt, tuple(Choice(*c) for c in choices))


def _load(name: str) -> None:
    """Import the chapter module that defines ``name`` (``ch02.scale`` lives in ``ch02.py``)."""
    chapter = name.split(".")[0]
    try:
        importlib.import_module(f"{__name__}.{chapter}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{chapter}":
            raise  # the chapter module exists but one of its imports failed
        if any(k.split(".")[0] == chapter for k in [*_CHECKERS, *_QUESTIONS]):
            return  # registered elsewhere (e.g. by a test), not by a chapter module
        raise KeyError(f"no exercises for chapter {chapter!r}; names look like 'ch02.scale'") from None


def check(name: str, answer: Any) -> Result:
    """Check ``answer`` to exercise ``name`` and remember the verdict for ``progress()``."""
    if name not in _CHECKERS:
        _load(name)
    if name not in _CHECKERS:
        known = ", ".join(sorted(k for k in _CHECKERS if k.split(".")[0] == name.split(".")[0]))
        raise KeyError(f"unknown exercise {name!r}; this chapter has: {known}")
    if answer is ... or answer is None:
        result = Result(name, False, "replace the `...` with your answer and run the cell again")
    else:
        try:
            result = _CHECKERS[name](answer)
        except LearnerRaised as raised:  # a learner's code may raise anything; report it as a hint
            result = Result(name, False, f"your answer raised {raised}")
        except Exception as exc:  # the checker could not use what it was given (a string for a number, ...)
            result = Result(name, False, f"could not check this answer: {type(exc).__name__}: {exc}")
    _PASSED[name] = _PASSED.get(name, False) or result.passed
    return result


def progress() -> str:
    """A one-line-per-exercise summary of what this kernel has checked so far."""
    if not _PASSED:
        return "no exercise checked yet in this kernel"
    lines = [f"  {'passed ' if ok else 'not yet'}  {name}" for name, ok in sorted(_PASSED.items())]
    done = sum(_PASSED.values())
    return f"{done} of {len(_PASSED)} checked exercises passed\n" + "\n".join(lines)


def _question(name: str) -> Question:
    """The question ``name``, or a KeyError that lists the chapter's questions."""
    if name not in _QUESTIONS:
        _load(name)
    if name not in _QUESTIONS:
        known = ", ".join(sorted(k for k in _QUESTIONS if k.split(".")[0] == name.split(".")[0]))
        raise KeyError(f"unknown question {name!r}; this chapter has: {known}")
    return _QUESTIONS[name]


def answer(name: str, choice: str) -> str:
    """Answer concept question ``name`` with a letter ('a', 'b', ...; 'B)' works too) and get the explanation."""
    q = _question(name)
    last = chr(ord("a") + len(q.choices) - 1)
    letter = choice.strip().strip("()[].:'\" ").lower() if isinstance(choice, str) else ""
    index = ord(letter) - ord("a") if len(letter) == 1 else -1
    if not 0 <= index < len(q.choices):
        raise ValueError(f"choose one letter from a to {last}, not {choice!r}")
    c = q.choices[index]
    verdict = "right" if c.correct else "not quite"
    _PASSED[name] = _PASSED.get(name, False) or c.correct
    return f"{verdict}: {c.why}"


def quiz(name: str):
    """Show concept question ``name`` as radio buttons that explain each choice when picked."""
    import ipywidgets as widgets

    q = _question(name)
    labels = [f"{chr(ord('a') + i)}) {c.text}" for i, c in enumerate(q.choices)]
    buttons = widgets.RadioButtons(options=labels, value=None, layout=widgets.Layout(width="auto"))
    feedback = widgets.HTML()

    def on_change(change) -> None:
        if change["new"] is not None:
            feedback.value = answer(name, chr(ord("a") + labels.index(change["new"])))

    buttons.observe(on_change, names="value")
    return widgets.VBox([widgets.HTML(f"<b>{q.prompt}</b>"), buttons, feedback])


def nonfinite(value: Any) -> str | None:
    """``"NaN"`` or ``"inf"`` if a learner's number, array or tensor holds one, else None.

    Checkers test this before comparing: NaN is never greater than a tolerance, so ``diff > atol`` alone
    would let an all-NaN answer through.
    """
    try:
        t = torch.as_tensor(value).double()
    except (TypeError, ValueError, RuntimeError):
        return None
    if t.isnan().any():
        return "NaN"
    if t.isinf().any():
        return "inf"
    return None


def dtype_mismatch(got: torch.Tensor, expected: torch.Tensor) -> str | None:
    """A hint if the learner's tensor has another dtype than the reference (and the inputs), else None."""
    if got.dtype == expected.dtype:
        return None
    have, want = str(got.dtype).removeprefix("torch."), str(expected.dtype).removeprefix("torch.")
    return f"your result is {have}; the inputs are {want}: keep their dtype (no .float(), .double() or .to(...))"


def changed_in_place(**pairs: tuple[torch.Tensor, torch.Tensor]) -> str:
    """A note naming each input the learner's function changed, given ``name=(what it got, untouched copy)``."""
    changed = [n for n, (given, copy) in pairs.items() if not torch.equal(given, copy)]
    if not changed:
        return ""
    names = ", ".join(f"`{n}`" for n in changed)
    return f"; your function changed its input {names} in place (`/=`, `+=`, `.div_`): build a new tensor instead"


def missed(where: str, got: torch.Tensor, expected: torch.Tensor, note: str = "") -> tuple[bool, str]:
    """The verdict on a tensor that matched no known mistake: the NaN or inf it holds, else how far off it is."""
    bad = nonfinite(got)
    if bad:
        return False, f"{where}: your result contains {bad}{note}"
    return False, f"{where}: off by up to {(got.double() - expected.double()).abs().max().item():.3g}{note}"


def compare(name: str, got: torch.Tensor, expected: torch.Tensor, atol: float = 1e-5) -> str:
    """Compare two tensors like a unit test would, and say how close they are.

    Returns ``"name: exact"``, ``"name: approximate (maxdiff 3e-07)"`` or ``"name: WRONG ..."``, so a
    learner sees at once whether a hand-written piece matches the reference.
    """
    got, expected = torch.as_tensor(got), torch.as_tensor(expected)
    if got.shape != expected.shape:
        return f"{name}: WRONG shape {tuple(got.shape)}, expected {tuple(expected.shape)}"
    if torch.equal(got, expected):
        return f"{name}: exact"
    diff = (got.double() - expected.double()).abs().max().item()
    verdict = "approximate" if diff <= atol else "WRONG"
    return f"{name}: {verdict} (maxdiff {diff:.1e})"


__all__ = [
    "LearnerRaised",
    "Result",
    "answer",
    "changed_in_place",
    "check",
    "compare",
    "dtype_mismatch",
    "exercise",
    "missed",
    "nonfinite",
    "progress",
    "question",
    "quiz",
]
