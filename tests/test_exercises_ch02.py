"""Chapter 02's checkers accept right answers, reject the classic wrong ones with the matching hint."""

import math

import pytest
import torch

from course_lib import exercises
from course_lib.exercises import answer, check


@pytest.fixture(autouse=True)
def fresh_progress(monkeypatch):
    monkeypatch.setattr(exercises, "_PASSED", {})


def right_attention(q, k, v, attention_mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if attention_mask is not None:
        scores = scores.masked_fill(attention_mask[:, None, :] == 0, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def test_scores():
    assert check("ch02.scores", lambda q, k: q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).passed
    unscaled = check("ch02.scores", lambda q, k: q @ k.transpose(-2, -1))
    assert not unscaled.passed and "sqrt(d_k)" in unscaled.message
    elementwise = check("ch02.scores", lambda q, k: q * k)
    assert not elementwise.passed and "element by element" in elementwise.message
    unanswered = check("ch02.scores", lambda q, k: None)
    assert not unanswered.passed and "returned None" in unanswered.message


def test_attention():
    assert check("ch02.attention", right_attention).passed
    ignores_mask = check("ch02.attention", lambda q, k, v, attention_mask=None: right_attention(q, k, v))
    assert not ignores_mask.passed and "-inf" in ignores_mask.message
    wrong_axis = check(
        "ch02.attention",
        lambda q, k, v, attention_mask=None: (
            torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-2) @ v
        ),
    )
    assert not wrong_axis.passed


def test_causal_mask():
    assert check("ch02.causal_mask", lambda T: torch.ones(T, T, dtype=torch.bool).tril()).passed
    future = check("ch02.causal_mask", lambda T: torch.ones(T, T, dtype=torch.bool).triu())
    assert not future.passed and "tril, not triu" in future.message
    floats = check("ch02.causal_mask", lambda T: torch.ones(T, T).tril())
    assert not floats.passed and "bool" in floats.message
    strict = check("ch02.causal_mask", lambda T: torch.ones(T, T, dtype=torch.bool).tril(-1))
    assert not strict.passed


def test_one_key():
    assert check("ch02.one_key", [7, 8, 9]).passed
    assert check("ch02.one_key", torch.tensor([[7.0, 8.0, 9.0]])).passed
    classic = check("ch02.one_key", [1.4, 3.2, 3.6])
    assert not classic.passed and "element-wise" in classic.message
    assert not check("ch02.one_key", [4, 10, 18]).passed


def test_spread():
    assert check("ch02.spread", 8).passed
    assert "variance" in check("ch02.spread", 64).message
    assert "after dividing" in check("ch02.spread", 1.0).message
    assert not check("ch02.spread", 32).passed


@pytest.mark.parametrize("name, right", [("ch02.q1", "b"), ("ch02.q2", "a"), ("ch02.q3", "a")])
def test_questions_have_one_right_choice(name, right):
    assert answer(name, right).startswith("right")
    for letter in "abcd":
        if letter != right:
            try:
                assert answer(name, letter).startswith("not quite")
            except ValueError:  # fewer choices than four
                break
