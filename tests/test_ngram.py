"""NGramModel against a brute-force reference: Python Counters and exact fractions, one n-gram at a time."""

import math
from collections import Counter
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.ngram import BackoffNGram, NGramModel


def reference_prob(ids, n, vocab_size, k, context, token):
    """P(token | context) by the textbook formula, counted with a Counter, exact with Fractions."""
    windows = Counter(tuple(ids[i : i + n]) for i in range(len(ids) - n + 1))
    ctx = tuple(context[len(context) - (n - 1) :]) if n > 1 else ()
    joint = windows[ctx + (token,)]
    total = sum(c for w, c in windows.items() if w[: n - 1] == ctx)
    k = Fraction(k)
    denominator = total + k * vocab_size
    return None if denominator == 0 else (joint + k) / denominator


corpora = st.integers(2, 5).flatmap(
    lambda v: st.tuples(st.just(v), st.lists(st.integers(0, v - 1), min_size=4, max_size=40))
)


@settings(max_examples=60, deadline=None)
@given(corpora, st.integers(1, 4), st.sampled_from([0.0, 0.5, 1.0]), st.data())
def test_probabilities_match_counting_by_hand(corpus, n, k, data):
    vocab_size, ids = corpus
    model = NGramModel.fit(ids, n=n, vocab_size=vocab_size, k=k)
    context = data.draw(st.lists(st.integers(0, vocab_size - 1), min_size=n - 1, max_size=n + 2))
    expected = [reference_prob(ids, n, vocab_size, k, context, w) for w in range(vocab_size)]
    if expected[0] is None:
        with pytest.raises(ValueError, match="never occurred in training"):
            model.next_token_probs(context)
        return
    got = model.next_token_probs(context)
    np.testing.assert_allclose(got, [float(p) for p in expected], rtol=1e-12)
    assert got.sum() == pytest.approx(1.0, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(corpora, st.integers(1, 4), st.sampled_from([0.0, 0.25, 1.0]), st.data())
def test_log_probs_and_perplexity_match_the_reference(corpus, n, k, data):
    vocab_size, ids = corpus
    model = NGramModel.fit(ids, n=n, vocab_size=vocab_size, k=k)
    held_out = data.draw(st.lists(st.integers(0, vocab_size - 1), min_size=n, max_size=30))
    ref = []
    for i in range(n - 1, len(held_out)):
        p = reference_prob(ids, n, vocab_size, k, held_out[:i], held_out[i])
        ref.append(-math.inf if not p else math.log(p))
    got = model.log_probs(held_out)
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    expected_ppl = math.inf if -math.inf in ref else math.exp(-sum(ref) / len(ref))
    assert model.perplexity(held_out) == pytest.approx(expected_ppl, rel=1e-12)


def test_worked_bigram_example():
    # "abab a": after 'a' always 'b'; after 'b' always 'a'. Checkable by hand.
    ids = [0, 1, 0, 1, 0]
    model = NGramModel.fit(ids, n=2, vocab_size=3)
    np.testing.assert_array_equal(model.counts([0]), [0, 2, 0])
    np.testing.assert_array_equal(model.next_token_probs([1]), [1.0, 0.0, 0.0])
    smoothed = model.with_smoothing(1.0)  # (count + 1) / (2 + 3)
    np.testing.assert_allclose(smoothed.next_token_probs([0]), [1 / 5, 3 / 5, 1 / 5])
    assert smoothed.ngram_codes is model.ngram_codes  # no recount
    assert model.num_ngrams == 2
    assert model.perplexity([0, 1, 0]) == pytest.approx(1.0)
    assert model.perplexity([0, 2]) == math.inf  # 'a' then 'c' never happened


def test_unigram_ignores_context():
    model = NGramModel.fit([0, 0, 0, 1], n=1, vocab_size=2)
    np.testing.assert_allclose(model.next_token_probs([]), [0.75, 0.25])
    np.testing.assert_allclose(model.next_token_probs([1, 1]), [0.75, 0.25])


def test_generation_is_repeatable_and_only_uses_seen_ngrams():
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 6, size=500).tolist()
    model = NGramModel.fit(ids, n=3, vocab_size=6)
    out = model.generate(ids[:2], max_new_tokens=200, seed=7)
    assert out[:2] == ids[:2] and len(out) == 202
    assert out == model.generate(ids[:2], max_new_tokens=200, seed=7)
    assert out != model.generate(ids[:2], max_new_tokens=200, seed=8)
    seen = {tuple(ids[i : i + 3]) for i in range(len(ids) - 2)}
    assert all(tuple(out[i : i + 3]) in seen for i in range(len(out) - 2))


def test_generation_follows_the_counts():
    # after 0 comes 1 three times out of four: the sampled frequency must be close to 0.75
    model = NGramModel.fit([0, 1, 0, 1, 0, 1, 0, 2, 0], n=2, vocab_size=3)
    rng = np.random.default_rng(0)
    draws = [model.generate([0], 1, seed=rng)[-1] for _ in range(4000)]
    assert abs(draws.count(1) / 4000 - 0.75) < 0.03 and draws.count(0) == 0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(ids=[0, 1], n=0, vocab_size=2), "n must be an integer >= 1"),
        (dict(ids=[0, 1], n=2, vocab_size=0), "vocab_size must be an integer >= 1"),
        (dict(ids=[0, 1], n=2, vocab_size=2, k=-1.0), "k must be >= 0"),
        (dict(ids=[0, 1], n=2, vocab_size=2, k=float("nan")), "k must be >= 0"),
        (dict(ids=[0, 5], n=2, vocab_size=2), r"ids\[1\] = 5 is not a token id"),
        (dict(ids=[0], n=2, vocab_size=2), "need at least n=2 tokens"),
        (dict(ids=[0, 1], n=12, vocab_size=50_000), "does not fit in a 64-bit"),
        (dict(ids=[[0, 1]], n=1, vocab_size=2), "1-D sequence"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NGramModel.fit(**kwargs)


def test_bad_queries_are_named():
    model = NGramModel.fit([0, 1, 2, 0, 1], n=3, vocab_size=3)
    with pytest.raises(ValueError, match="needs the last 2 tokens"):
        model.next_token_probs([1])
    with pytest.raises(ValueError, match="needs the last 2 tokens"):
        model.generate([1], 5)
    with pytest.raises(ValueError, match="max_new_tokens"):
        model.generate([0, 1], -1)
    with pytest.raises(ValueError, match=r"context\[0\] = 3"):
        model.counts([3, 0])
    with pytest.raises(TypeError, match="integer token ids"):
        model.log_probs([0.5, 1.0, 2.0])


def test_backoff_uses_the_longest_seen_context():
    # corpus "abcabd": context "ab" is seen (followed by c and d); "cb" never is, so it backs off to "b"
    ids = [0, 1, 2, 0, 1, 3]
    model = BackoffNGram.fit(ids, n=3, vocab_size=4)
    assert [m.n for m in model.models] == [1, 2, 3]
    assert model.order_used([0, 1]) == 3
    np.testing.assert_allclose(model.next_token_probs([0, 1]), [0, 0, 0.5, 0.5])
    assert model.order_used([2, 1]) == 2  # "b" alone was followed by c and d
    np.testing.assert_allclose(model.next_token_probs([2, 1]), [0, 0, 0.5, 0.5])
    assert model.order_used([3]) == 1  # "d" ends the text: nothing ever followed it
    np.testing.assert_allclose(model.next_token_probs([3]), np.bincount(ids, minlength=4) / 6)
    assert model.order_used([]) == 1


def test_backoff_generation_agrees_with_the_plain_model_where_contexts_are_seen():
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 4, size=3000).tolist()
    backoff = BackoffNGram.fit(ids, n=3, vocab_size=4)
    plain = NGramModel.fit(ids, n=3, vocab_size=4)
    # every 2-token context occurs in 3000 random tokens over 4 symbols, so both sample identically
    assert backoff.generate(ids[:2], 100, seed=5) == plain.generate(ids[:2], 100, seed=5)
    out = backoff.generate([1], 50, seed=0, stop=2)
    assert out[-1] == 2 and 2 not in out[1:-1]


def test_backoff_rejects_mismatched_models():
    a, b = NGramModel.fit([0, 1, 0], 1, 2), NGramModel.fit([0, 1, 0], 3, 2)
    with pytest.raises(ValueError, match="orders 1, 2, ..., n"):
        BackoffNGram((a, b))
    with pytest.raises(ValueError, match="share one vocab_size"):
        BackoffNGram((a, NGramModel.fit([0, 1, 0], 2, 3)))
    with pytest.raises(ValueError, match="stop=9"):
        BackoffNGram((a,)).generate([0], 3, stop=9)
