"""A bag-of-words logistic-regression classifier: the baseline every text model must beat (chapters 06, 08).

It ignores word order entirely: a sentence is the set of its (lower-cased) words, each word has one
learned weight per class, and the class scores are the sums of the weights of the words present plus a
bias. Training minimises the cross-entropy plus an L2 penalty, a convex problem, so full-batch L-BFGS
from a zero start reaches the same predictions on every run, with no seed involved. Words are looked up with
``F.embedding_bag`` (a sum of rows), so no dense (sentences x vocabulary) matrix is ever built.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from course_lib.data import check_class_ids

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")


def words(text: str) -> list[str]:
    """Lower-cased words, with ``n't``-style endings kept on their word, and each punctuation mark apart."""
    return _WORD.findall(text.lower())


@dataclass
class BagOfWordsClassifier:
    """A trained baseline: ``vocab`` (word -> row), ``weight`` (V, K) and ``bias`` (K,)."""

    vocab: dict[str, int]
    weight: Tensor
    bias: Tensor

    def _bags(self, texts: Sequence[str]) -> tuple[Tensor, Tensor]:
        """The distinct known words of every text as one flat id tensor plus each text's start offset."""
        bags = [sorted({self.vocab[w] for w in words(t) if w in self.vocab}) for t in texts]
        offsets = torch.tensor([0, *map(len, bags)]).cumsum(0)[:-1]  # (N,)
        return torch.tensor([i for bag in bags for i in bag], dtype=torch.long), offsets

    def scores(self, texts: Sequence[str]) -> Tensor:
        """(N, K) class scores (logits) of ``texts``."""
        _check_texts(texts, "scores([text])")
        ids, offsets = self._bags(texts)
        return F.embedding_bag(ids, self.weight, offsets, mode="sum") + self.bias  # (N, K)

    def predict(self, texts: Sequence[str]) -> Tensor:
        """(N,) the most likely class of each text."""
        _check_texts(texts, "predict([text])")
        return self.scores(texts).argmax(dim=1)

    def top_words(self, label: int, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` words that push hardest towards class ``label`` relative to the others."""
        contrast = self.weight[:, label] - self.weight.mean(dim=1)  # (V,)
        words_of = {i: w for w, i in self.vocab.items()}
        values, rows = contrast.topk(k)
        return [(words_of[r], round(v, 4)) for r, v in zip(rows.tolist(), values.tolist(), strict=True)]


def _check_texts(texts: Sequence[str], one: str) -> None:
    """A list of strings: a bare string would be read as a list of one-character texts."""
    if isinstance(texts, str):
        raise TypeError(f"texts must be a list of strings, got one str; for one sentence use {one}")
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise TypeError(f"texts must be a list of strings, but texts[{bad}] is a {type(texts[bad]).__name__}")


def train_bag_of_words(
    texts: Sequence[str],
    labels: Sequence[int],
    num_labels: int = 2,
    min_count: int = 2,
    l2: float = 1e-4,
    max_iter: int = 200,
) -> BagOfWordsClassifier:
    """Fit the baseline: the vocabulary is every word seen at least ``min_count`` times in ``texts``.

    The objective is ``mean cross-entropy + l2 * sum(weight ** 2)`` (the bias is not penalised), minimised
    with full-batch L-BFGS for at most ``max_iter`` iterations.
    """
    _check_texts(texts, "train_bag_of_words([text], [label])")
    if len(texts) != len(labels) or not texts:
        raise ValueError(f"need as many labels as texts and at least one of each; got {len(texts)} and {len(labels)}")
    check_class_ids(labels)
    if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
        raise ValueError(f"min_count must be a positive int, got {min_count!r}")
    if not l2 >= 0:
        raise ValueError(f"l2 must be >= 0, got {l2!r}")
    y = torch.as_tensor(labels, dtype=torch.long)
    if y.min() < 0 or y.max() >= num_labels:
        raise ValueError(f"labels must be in 0..{num_labels - 1} for num_labels={num_labels}; got {y.min()}..{y.max()}")
    counts = Counter(w for t in texts for w in set(words(t)))
    vocab = {w: i for i, w in enumerate(sorted(w for w, c in counts.items() if c >= min_count))}
    weight = torch.zeros(len(vocab), num_labels, requires_grad=True)
    bias = torch.zeros(num_labels, requires_grad=True)
    model = BagOfWordsClassifier(vocab, weight, bias)
    ids, offsets = model._bags(texts)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=max_iter, tolerance_grad=1e-7, line_search_fn="strong_wolfe")

    def objective() -> Tensor:
        optimizer.zero_grad()
        logits = F.embedding_bag(ids, weight, offsets, mode="sum") + bias  # (N, K)
        loss = F.cross_entropy(logits, y) + l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(objective)
    return BagOfWordsClassifier(vocab, weight.detach(), bias.detach())
