"""A count-based n-gram language model: the baseline every neural model in the course is compared with.

Chapter 00 builds it by hand (count, divide, sample) and then uses this version on the whole
Shakespeare corpus; chapter 10 returns to its question (form without reasoning) with a real model. It
works on token ids, so the same class serves characters, BPE tokens or anything else.

Every n-gram is stored as one integer, its digits in base ``vocab_size`` (the context's tokens, then
the next token). Sorting those integers puts all continuations of a context side by side, so counting
is one ``np.unique`` and every lookup is a binary search: fast enough for a million tokens without a
Python loop over them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

_INT64_MAX = np.iinfo(np.int64).max


def _as_ids(ids: Sequence[int] | np.ndarray, vocab_size: int, what: str) -> np.ndarray:
    """Token ids as an int64 array, or a ValueError naming the first id outside [0, vocab_size)."""
    arr = np.asarray(ids)
    if arr.ndim != 1:
        raise ValueError(f"{what} must be a 1-D sequence of token ids, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{what} must hold integer token ids, got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    bad = np.flatnonzero((arr < 0) | (arr >= vocab_size))
    if bad.size:
        raise ValueError(
            f"{what}[{bad[0]}] = {arr[bad[0]]} is not a token id of this model (0 <= id < vocab_size={vocab_size}); "
            "encode the text with the tokenizer the model was fitted with"
        )
    return arr


def _codes(ids: np.ndarray, length: int, vocab_size: int) -> np.ndarray:
    """The integer code of every window of ``length`` consecutive ids: (len(ids) - length + 1,)."""
    count = len(ids) - length + 1
    codes = np.zeros(max(count, 0), dtype=np.int64)
    for i in range(length):  # Horner's rule over the window, one array operation per position
        codes = codes * vocab_size + ids[i : i + count]
    return codes


@dataclass(frozen=True)
class NGramModel:
    """Next-token probabilities from counts: P(w | context) = (c(context, w) + k) / (c(context) + k V).

    ``n`` is the window length (n - 1 tokens of context, then the token predicted), ``k`` the add-k
    smoothing constant. With ``k = 0`` this is the maximum-likelihood estimate, which gives probability
    zero to every n-gram the training text happens not to contain; any ``k > 0`` keeps a little mass for
    them. Build one with :meth:`fit`; :meth:`with_smoothing` changes ``k`` without counting again.
    """

    n: int
    vocab_size: int
    k: float = 0.0
    # sorted codes of the n-grams seen in training and how often each occurred
    ngram_codes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)
    ngram_counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.n, int) or self.n < 1:
            raise ValueError(f"n must be an integer >= 1 (1 = unigram, 2 = bigram, ...), got {self.n!r}")
        if not isinstance(self.vocab_size, int) or self.vocab_size < 1:
            raise ValueError(f"vocab_size must be an integer >= 1, got {self.vocab_size!r}")
        if self.vocab_size**self.n > _INT64_MAX:
            raise ValueError(
                f"vocab_size**n = {self.vocab_size}**{self.n} does not fit in a 64-bit integer code "
                f"(limit {_INT64_MAX}); use a smaller n or a smaller vocabulary"
            )
        if not self.k >= 0:  # also rejects NaN
            raise ValueError(f"smoothing constant k must be >= 0, got {self.k!r}")

    @classmethod
    def fit(cls, ids: Sequence[int] | np.ndarray, n: int, vocab_size: int, k: float = 0.0) -> NGramModel:
        """Count every window of ``n`` consecutive tokens in ``ids`` (the training text, already encoded)."""
        empty = cls(n, vocab_size, k)  # validates the arguments before any counting
        arr = _as_ids(ids, vocab_size, "ids")
        if len(arr) < n:
            raise ValueError(f"need at least n={n} tokens to count one {n}-gram, got {len(arr)}")
        codes, counts = np.unique(_codes(arr, n, vocab_size), return_counts=True)
        return replace(empty, ngram_codes=codes, ngram_counts=counts.astype(np.int64))

    def with_smoothing(self, k: float) -> NGramModel:
        """The same counts with a different add-k constant (the arrays are shared, not copied)."""
        return replace(self, k=k)

    @property
    def num_ngrams(self) -> int:
        """How many distinct n-grams the training text contained."""
        return len(self.ngram_codes)

    def _context(self, context: Sequence[int] | np.ndarray) -> np.ndarray:
        arr = _as_ids(context, self.vocab_size, "context")
        if len(arr) < self.n - 1:
            raise ValueError(
                f"a {self.n}-gram model needs the last {self.n - 1} tokens as context, got {len(arr)}; "
                "pass a longer prompt"
            )
        return arr[len(arr) - (self.n - 1) :]

    def counts(self, context: Sequence[int] | np.ndarray) -> np.ndarray:
        """How often each token followed ``context`` (its last n - 1 tokens) in training: (V,) int64."""
        ctx = self._context(context)
        base = _codes(ctx, self.n - 1, self.vocab_size)[0] * self.vocab_size if self.n > 1 else 0
        lo, hi = np.searchsorted(self.ngram_codes, [base, base + self.vocab_size])
        out = np.zeros(self.vocab_size, dtype=np.int64)
        out[self.ngram_codes[lo:hi] - base] = self.ngram_counts[lo:hi]
        return out

    def next_token_probs(self, context: Sequence[int] | np.ndarray) -> np.ndarray:
        """P(next token | last n - 1 tokens of ``context``) for every token: (V,) float64.

        With ``k = 0`` a context never seen in training has no estimate at all (0 / 0); that is an
        error here, since silently returning some distribution would hide exactly what smoothing fixes.
        """
        c = self.counts(context).astype(np.float64)
        total = c.sum() + self.k * self.vocab_size
        if total == 0:
            raise ValueError(
                f"context {self._context(context).tolist()} never occurred in training, so with k=0 its next-token "
                "distribution is 0/0; use with_smoothing(k) with k > 0, or start from a prompt taken from the "
                "training text"
            )
        return (c + self.k) / total

    def log_probs(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Natural-log probability of each token ``ids[n-1:]`` given the n - 1 tokens before it.

        The first n - 1 tokens have no full context and are not scored. An n-gram the model gives
        probability zero (only possible with ``k = 0``) scores ``-inf``. Shape (len(ids) - n + 1,).
        """
        arr = _as_ids(ids, self.vocab_size, "ids")
        if len(arr) < self.n:
            raise ValueError(f"need at least n={self.n} tokens to score one, got {len(arr)}")
        full = _codes(arr, self.n, self.vocab_size)
        joint = self._lookup(full)
        if self.n == 1:
            context = np.full(len(full), self.ngram_counts.sum(), dtype=np.int64)
        else:
            # c(context) = total count of all n-grams whose code lies in [context * V, context * V + V)
            base = (full // self.vocab_size) * self.vocab_size
            cumulative = np.concatenate([[0], np.cumsum(self.ngram_counts)])
            lo = np.searchsorted(self.ngram_codes, base)
            hi = np.searchsorted(self.ngram_codes, base + self.vocab_size)
            context = cumulative[hi] - cumulative[lo]
        with np.errstate(divide="ignore", invalid="ignore"):  # 0/0 and log(0) are the -inf this documents
            p = (joint + self.k) / (context + self.k * self.vocab_size)
            return np.where(p > 0, np.log(p), -np.inf)

    def _lookup(self, codes: np.ndarray) -> np.ndarray:
        """Training count of each n-gram code (0 for those never seen), as float64."""
        if not len(self.ngram_codes):
            return np.zeros(len(codes))
        pos = np.minimum(np.searchsorted(self.ngram_codes, codes), len(self.ngram_codes) - 1)
        return np.where(self.ngram_codes[pos] == codes, self.ngram_counts[pos], 0).astype(np.float64)

    def perplexity(self, ids: Sequence[int] | np.ndarray) -> float:
        """exp(mean negative log-likelihood) of ``ids[n-1:]``: the number of equally likely choices the
        model is, on average, as unsure as. ``inf`` when any token gets probability zero."""
        return float(np.exp(-self.log_probs(ids).mean()))

    def generate(
        self,
        prompt: Sequence[int] | np.ndarray,
        max_new_tokens: int,
        seed: int | np.random.Generator = 0,
        stop: int | None = None,
    ) -> list[int]:
        """Extend ``prompt`` by sampling one token at a time from :meth:`next_token_probs`.

        Returns prompt and new tokens together; stops early after sampling token ``stop`` if given.
        ``seed`` (or a NumPy ``Generator``) makes it repeatable.
        """
        self._context(prompt)  # a too-short prompt fails here, before any sampling
        return _sample(self.next_token_probs, self.vocab_size, prompt, max_new_tokens, seed, stop)


@dataclass(frozen=True)
class BackoffNGram:
    """Predict each token from the longest end of the context that occurred in training.

    An n-gram model with large n has seen almost no long context twice, so most of its contexts are
    new; instead of smoothing towards the uniform distribution, this backs off to the (n-1)-gram, then
    the (n-2)-gram, ..., and samples from the first order whose context it has counts for (the rule the
    "infini-gram" of Liu et al., 2024 uses). The result is the most fluent text counting alone can give,
    which is what chapter 00 needs to separate fluent form from getting the answer right.
    """

    models: tuple[NGramModel, ...]  # models[i] has order i + 1, all fitted on the same text

    def __post_init__(self) -> None:
        orders = [m.n for m in self.models]
        if orders != list(range(1, len(orders) + 1)):
            raise ValueError(f"models must have orders 1, 2, ..., n in that order; got orders {orders}")
        if len({m.vocab_size for m in self.models}) > 1:
            raise ValueError("all models must share one vocab_size (fit them on the same encoded text)")

    @classmethod
    def fit(cls, ids: Sequence[int] | np.ndarray, n: int, vocab_size: int) -> BackoffNGram:
        """Count every order from 1 to ``n`` in ``ids``."""
        arr = _as_ids(ids, vocab_size, "ids")
        NGramModel(n, vocab_size)  # validates n and vocab_size before counting n times
        return cls(tuple(NGramModel.fit(arr, order, vocab_size) for order in range(1, n + 1)))

    @property
    def n(self) -> int:
        return len(self.models)

    @property
    def vocab_size(self) -> int:
        return self.models[0].vocab_size

    def order_used(self, context: Sequence[int] | np.ndarray) -> int:
        """The largest order whose context (the last order - 1 tokens) occurred in training."""
        arr = _as_ids(context, self.vocab_size, "context")
        for model in reversed(self.models[: len(arr) + 1]):
            if model.counts(arr).any():
                return model.n
        raise ValueError("the unigram counts are empty: fit the model on a non-empty text")

    def next_token_probs(self, context: Sequence[int] | np.ndarray) -> np.ndarray:
        """Maximum-likelihood next-token probabilities under the longest seen context: (V,) float64."""
        return self.models[self.order_used(context) - 1].next_token_probs(context)

    def generate(
        self,
        prompt: Sequence[int] | np.ndarray,
        max_new_tokens: int,
        seed: int | np.random.Generator = 0,
        stop: int | None = None,
    ) -> list[int]:
        """Like :meth:`NGramModel.generate`, backing off at each step; any prompt length works."""
        return _sample(self.next_token_probs, self.vocab_size, prompt, max_new_tokens, seed, stop)


def _sample(
    next_token_probs: Callable[[list[int]], np.ndarray],
    vocab_size: int,
    prompt: Sequence[int] | np.ndarray,
    max_new_tokens: int,
    seed: int | np.random.Generator,
    stop: int | None,
) -> list[int]:
    """The sampling loop both models share: draw a token, append it, repeat."""
    if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")
    if stop is not None and not 0 <= stop < vocab_size:
        raise ValueError(f"stop={stop!r} is not a token id (0 <= id < vocab_size={vocab_size})")
    out = _as_ids(prompt, vocab_size, "prompt").tolist()
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    for _ in range(max_new_tokens):
        out.append(int(rng.choice(vocab_size, p=next_token_probs(out))))
        if out[-1] == stop:
            break
    return out


__all__ = ["BackoffNGram", "NGramModel"]
