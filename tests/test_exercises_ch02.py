"""Chapter 02's checkers accept right answers, reject the classic wrong ones with the matching hint."""

import math

import pytest
import torch
from test_exercises import assert_rejected

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
    assert_rejected(wrong_axis, "output without a mask is off by up to")


def test_causal_mask():
    assert check("ch02.causal_mask", lambda T: torch.ones(T, T, dtype=torch.bool).tril()).passed
    future = check("ch02.causal_mask", lambda T: torch.ones(T, T, dtype=torch.bool).triu())
    assert not future.passed and "tril, not triu" in future.message
    floats = check("ch02.causal_mask", lambda T: torch.ones(T, T).tril())
    assert not floats.passed and "bool" in floats.message
    strict = check("ch02.causal_mask", lambda T: torch.ones(T, T, dtype=torch.bool).tril(-1))
    assert_rejected(strict, "causal_mask(1) is wrong: row i should be True in columns 0..i")


def test_one_key():
    assert check("ch02.one_key", [7, 8, 9]).passed
    assert check("ch02.one_key", torch.tensor([[7.0, 8.0, 9.0]])).passed
    classic = check("ch02.one_key", [1.4, 3.2, 3.6])
    assert not classic.passed and "element-wise" in classic.message
    assert_rejected(check("ch02.one_key", [4, 10, 18]), "a softmax over a single score is exactly 1")


def test_spread():
    assert check("ch02.spread", 8).passed
    assert "variance" in check("ch02.spread", 64).message
    assert "after dividing" in check("ch02.spread", 1.0).message
    assert_rejected(check("ch02.spread", 32), "add their variances")


@pytest.mark.parametrize("name, right", [("ch02.q1", "b"), ("ch02.q2", "a"), ("ch02.q3", "a")])
def test_questions_have_one_right_choice(name, right):
    assert answer(name, right).startswith("right")
    for letter in "abcd":
        if letter != right:
            try:
                assert answer(name, letter).startswith("not quite")
            except ValueError:  # fewer choices than four
                break


def test_nan_never_matches():
    nan = float("nan")
    all_nan = check("ch02.scores", lambda q, k: torch.full((*q.shape[:-1], k.shape[-2]), nan, dtype=q.dtype))
    assert not all_nan.passed and "contains NaN" in all_nan.message
    nan_out = check("ch02.attention", lambda q, k, v, attention_mask=None: torch.full_like(v, nan))
    assert_rejected(nan_out, "output without a mask contains NaN")
    one_key = check("ch02.one_key", [nan, nan, nan])
    assert not one_key.passed and "contains NaN" in one_key.message


def masked_attention(mask_of):
    def attention(q, k, v, attention_mask=None):
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        if attention_mask is not None:
            scores = scores.masked_fill(mask_of(attention_mask), float("-inf"))
        return torch.softmax(scores, dim=-1) @ v

    return attention


@pytest.mark.parametrize(
    "mask_of",
    [
        lambda m: m[:, None, :].bool(),  # PyTorch's convention by mistake: True = masked out
        lambda m: m[:, :, None] == 0,  # the query axis instead of the key axis
    ],
)
def test_padding_mask_mistakes_that_give_nan_rows_are_caught(mask_of):
    result = check("ch02.attention", masked_attention(mask_of))
    assert not result.passed and "a row where every key is masked?" in result.message


def test_a_right_answer_that_changes_its_inputs_in_place_passes():
    def scores(q, k):
        q /= math.sqrt(q.shape[-1])
        return q @ k.transpose(-2, -1)

    def attention(q, k, v, attention_mask=None):
        q.div_(math.sqrt(q.shape[-1]))
        return masked_attention(lambda m: m[:, None, :] == 0)(q * math.sqrt(q.shape[-1]), k, v, attention_mask)

    assert check("ch02.scores", scores).passed
    assert check("ch02.attention", attention).passed


def test_a_wrong_answer_that_changes_its_inputs_in_place_is_told_so():
    def scores(q, k):
        q *= 2
        return q @ k.transpose(-2, -1)

    result = check("ch02.scores", scores)
    assert not result.passed and "changed its input `q` in place" in result.message


def test_causal_mask_from_numpy_says_so():
    import numpy as np

    result = check("ch02.causal_mask", lambda T: np.tril(np.ones((T, T), dtype=bool)))
    assert not result.passed and "got a numpy array" in result.message
