"""Chapters 00 and 01: each checker accepts a right answer and answers the usual wrong ones with their hint."""

import math
from collections import Counter

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_exercises import assert_rejected

from course_lib import exercises
from course_lib.exercises import answer, check


@pytest.fixture(autouse=True)
def fresh_progress(monkeypatch):
    monkeypatch.setattr(exercises, "_PASSED", {})


def bigram(text, char):
    after = Counter(b for a, b in zip(text, text[1:], strict=False) if a == char)
    return {c: n / sum(after.values()) for c, n in after.items()}


def test_next_char_probs():
    assert check("ch00.next_char_probs", bigram).passed
    counts = check(
        "ch00.next_char_probs", lambda t, c: dict(Counter(b for a, b in zip(t, t[1:], strict=False) if a == c))
    )
    assert not counts.passed and "sum to" in counts.message
    wrong_char = check("ch00.next_char_probs", lambda t, c: bigram(t, t[0]))
    assert not wrong_char.passed and "expected" in wrong_char.message
    assert "returns None" in check("ch00.next_char_probs", lambda t, c: None).message


def test_perplexity():
    assert check("ch00.perplexity", lambda p: math.exp(-np.mean(np.log(p)))).passed
    assert "cross-entropy" in check("ch00.perplexity", lambda p: -np.mean(np.log(p))).message
    assert "sign" in check("ch00.perplexity", lambda p: math.exp(np.mean(np.log(p)))).message
    assert "not the sum" in check("ch00.perplexity", lambda p: math.exp(-np.sum(np.log(p)))).message


def test_add_k():
    assert check("ch00.add_k", lambda c, k: (c + k) / (c.sum() + k * len(c))).passed
    assert "k * V" in check("ch00.add_k", lambda c, k: (c + k) / (c.sum() + k)).message
    assert "shape" in check("ch00.add_k", lambda c, k: np.array([1.0])).message


def test_window():
    assert check("ch00.window", 8).passed
    assert "includes the token it predicts" in check("ch00.window", 7).message
    assert_rejected(check("ch00.window", 8.0), "answer with a whole number, not float")
    assert_rejected(check("ch00.window", 6), "count the characters of '\\n23+58='")


def test_pair_counts():
    assert check("ch01.pair_counts", lambda ids: Counter(zip(ids, ids[1:], strict=False))).passed
    skipping = check(
        "ch01.pair_counts", lambda ids: Counter(zip(ids[::2], ids[1::2], strict=False))
    )  # misses overlapping pairs
    assert not skipping.passed and "zip(ids, ids[1:])" in skipping.message


def reference_encode(word, merges):
    ids = list(word.encode("utf-8"))
    for rank, pair in enumerate(merges):
        out, i = [], 0
        while i < len(ids):
            if tuple(ids[i : i + 2]) == pair:
                out.append(256 + rank)
                i += 2
            else:
                out.append(ids[i])
                i += 1
        ids = out
    return ids


def test_encode():
    assert check("ch01.encode", reference_encode).passed
    reversed_order = check("ch01.encode", lambda w, m: reference_encode(w, m[::-1]))
    assert not reversed_order.passed and "should be" in reversed_order.message
    assert "enumerate(merges)" in check("ch01.encode", lambda w, m: list(w.encode())).message


def test_one_hot_lookup():
    assert check("ch01.one_hot_lookup", lambda ids, w: F.one_hot(ids, w.shape[0]).to(w.dtype) @ w).passed
    assert "shape" in check("ch01.one_hot_lookup", lambda ids, w: w[ids[0]]).message
    shifted = check("ch01.one_hot_lookup", lambda ids, w: F.one_hot(ids, w.shape[0]).to(w.dtype) @ w.roll(1, 0))
    assert not shifted.passed and "F.one_hot" in shifted.message


def test_offset_dot():
    assert check("ch01.offset_dot", lambda k, d: sum(math.cos(k * 10000 ** (-2 * i / d)) for i in range(d // 2))).passed
    assert "d / 2" in check("ch01.offset_dot", lambda k, d: 0.0).message
    sines = check("ch01.offset_dot", lambda k, d: sum(math.sin(k * 10000 ** (-2 * i / d)) for i in range(d // 2)))
    assert_rejected(sines, "pe_dot(0, 8) should be 4.000000, got 0.000000")


@pytest.mark.parametrize(
    "name, right",
    [("ch00.q1", "b"), ("ch00.q2", "a"), ("ch00.q3", "b"), ("ch01.q1", "b"), ("ch01.q2", "a"), ("ch01.q3", "b")],
)
def test_questions_have_one_right_answer(name, right):
    assert answer(name, right).startswith("right:")
    for wrong in "abc".replace(right, ""):
        assert answer(name, wrong).startswith("not quite:")


def test_checkers_compare_with_torch_not_themselves():
    # the one-hot checker's reference is F.embedding: a lookup that ignores the table must fail
    zeros = check("ch01.one_hot_lookup", lambda ids, w: torch.zeros(*ids.shape, w.shape[1], dtype=w.dtype))
    assert_rejected(zeros, "row i of one_hot(ids) @ weight should be weight[ids[i]]")


def test_next_char_probs_rejects_nan():
    def with_nan(text, char):
        return {**bigram(text, char), "\0": float("nan")}  # NaN sums and compares as "not off"

    result = check("ch00.next_char_probs", with_nan)
    assert not result.passed and "contain NaN" in result.message


def test_add_k_numerator_without_k_gets_its_own_hint():
    result = check("ch00.add_k", lambda c, k: c / (c.sum() + k * len(c)))
    assert not result.passed and "numerator" in result.message


def test_window_accepts_numpy_and_torch_integers_only():
    assert check("ch00.window", np.int64(8)).passed
    assert check("ch00.window", torch.tensor(8)).passed

    class EqualsEverything(int):
        def __eq__(self, other):
            return True

        __hash__ = int.__hash__

    assert_rejected(check("ch00.window", EqualsEverything(0)), "then add 1")
    assert "whole number" in check("ch00.window", "8").message


def test_one_hot_lookup_needs_num_classes():
    result = check("ch01.one_hot_lookup", lambda ids, w: F.one_hot(ids).to(w.dtype) @ w)
    assert not result.passed and "num_classes=weight.shape[0]" in result.message
