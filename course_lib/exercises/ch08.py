"""Checkers and concept questions for chapter 08, fine-tuning BERT for sentences and for tokens.

References are computed here from the definitions, independent of ``course_lib.bert``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from course_lib.exercises import exercise, question


@exercise("ch08.head_params")
def _head_params(value: Any) -> tuple[bool, str]:
    """Trained parameters of a 2-class linear head on MiniLM's 384-wide pooled vector, the encoder frozen."""
    value = int(value)
    if value == 384 * 2 + 2:
        return True, "a 384 x 2 weight matrix and 2 biases: 770 parameters, against 22.7 million in the encoder"
    if value == 384 * 2:
        return False, "add the bias: one per class"
    if value == 384 * 384 + 384 + 770:
        return False, "the pooler belongs to the frozen encoder here; count only the new classifier"
    return False, "the head maps 384 features to 2 classes: count its weights and its biases"


@exercise("ch08.word_labels")
def _word_labels(fn: Callable[[list[int | None], list[int]], list[int]]) -> tuple[bool, str]:
    """``fn(word_ids, tags)``: each token's label is its word's tag at the word's first piece, else -100.

    ``word_ids`` gives, for every token, the index of the word it came from, or None for [CLS]/[SEP].
    """
    cases = [
        # [CLS] the un ##believ ##able film , ... [SEP]
        ([None, 0, 1, 1, 1, 2, 3, 3, None], [5, 2, 0, 10], [-100, 5, 2, -100, -100, 0, 10, -100, -100]),
        # a two-piece first word, a one-piece word, a three-piece word, then [SEP] and a [PAD]
        ([None, 0, 0, 1, 2, 2, 2, None, None], [7, 1, 3], [-100, 7, -100, 1, 3, -100, -100, -100, -100]),
    ]
    for word_ids, tags, want in cases:
        got = fn(list(word_ids), list(tags))
        if got is None:
            return False, "your function returned None: replace the `...` in its body with your code"
        got = list(got)
        if any(t is None for t in got):
            return False, "[CLS] and [SEP] (word id None) get the label -100, not None: the loss skips -100"
        got = [int(t) for t in got]
        if got == want:
            continue
        if len(got) != len(want):
            return False, f"return one label per token: {len(want)} here, got {len(got)}"
        every_piece = [-100 if w is None else tags[w] for w in word_ids]
        if got == every_piece:
            return False, "every piece got its word's tag: label only the first piece, so each word counts once"
        if got[0] != -100 or got[-1] != -100:
            return False, "[CLS] and [SEP] (word id None) get -100, which the loss skips"
        return False, (
            f"for word_ids={word_ids} and tags={tags} expected {want}: give a token its word's tag when its "
            "word id differs from the previous token's, -100 otherwise"
        )
    return True, "one label per word, on its first piece; the other pieces and the special tokens are ignored"


@exercise("ch08.accuracy")
def _accuracy(fn: Callable[[torch.Tensor, torch.Tensor], float]) -> tuple[bool, str]:
    """``fn(logits, labels)``: the share of rows whose largest logit is at the label."""
    cases = [
        (torch.tensor([[2.0, -1.0], [0.1, 0.3], [-0.5, -0.2], [1.0, 0.9], [0.0, 3.0]]), torch.tensor([0, 1, 0, 1, 1])),
        (  # three classes, four rows, three right
            torch.tensor([[0.2, 1.5, -0.3], [2.0, 0.1, 0.4], [0.0, 0.2, 0.9], [1.1, 1.3, 0.2]]),
            torch.tensor([1, 0, 2, 0]),
        ),
    ]
    for logits, labels in cases:
        right = (logits.argmax(-1) == labels).float().mean().item()
        got = fn(logits.clone(), labels.clone())
        if got is None:
            return False, "your function returned None: replace the `...` in its body with your code"
        got = float(got)
        if math.isclose(got, right, abs_tol=1e-6):
            continue
        if math.isclose(got, right * len(labels), abs_tol=1e-6):
            return False, "that is the number of correct rows; divide by the number of rows"
        return False, (
            f"for {len(labels)} rows and {logits.shape[1]} classes expected {right:.2f}: take logits.argmax(dim=-1), "
            "compare with labels, and average the matches as floats"
        )
    return True, "3 of 5 rows are right: argmax over the classes, compare, average"


question(
    "ch08.q1",
    "Fine-tuned on the same 8,056 sentences for the same steps, chapter 07's small pretrained BERT did no better than the same architecture from random weights, while the pretrained MiniLM beat both by far. What explains it best?",
    [
        (
            "Pretraining never helps small models",
            False,
            "MiniLM is small too (22.7M parameters, 6 layers); what differs is how much its pretraining learned",
        ),
        (
            "Pretraining pays in proportion to what it learned that the task needs: the small BERT read 1 million words of 1961 prose (it fills in a third of held-out blanks, but never met a movie review), while MiniLM's teacher read billions of words and learned what words mean in context",
            True,
            "a labelled set of 8,000 sentences is far too small to learn English from; only a pretraining that already did can hand that over",
        ),
        (
            "The small BERT's vocabulary cannot spell movie reviews",
            False,
            "under 0.2% of its tokens are [UNK]: the words are there, their meanings were never learned",
        ),
        (
            "Random initialisation is better for classification",
            False,
            "MiniLM starts from pretrained weights and is by far the best of the three",
        ),
    ],
)

question(
    "ch08.q2",
    "Why is fine-tuning done with a small learning rate (around 1e-5 to 1e-4) and few steps?",
    [
        ("Large learning rates are slower", False, "they are not slower; they move the weights further"),
        (
            "To keep the weights close to the pretrained ones: large updates on a small labelled set overwrite what pretraining learned and overfit",
            True,
            "so one to three epochs at a small rate is the usual recipe",
        ),
        (
            "The classifier head would not train at a larger rate",
            False,
            "the new head trains fine at larger rates; the pretrained encoder is what needs care",
        ),
        ("Because fine-tuning uses fp16", False, "precision has nothing to do with it; our run is in float32"),
    ],
)

question(
    "ch08.q3",
    "In part-of-speech tagging with WordPiece, why is only the first piece of each word labelled?",
    [
        ("Later pieces have no vector", False, "every piece gets a vector; we choose not to grade them"),
        (
            "So that each word counts once in the loss and the accuracy, whatever the number of pieces it was split into, and the tags stay per word as in the corpus",
            True,
            "labelling every piece would weigh long rare words more and require a rule to merge piece predictions",
        ),
        (
            "The tokenizer drops later pieces",
            False,
            "nothing is dropped; the label -100 only excludes them from the loss",
        ),
        (
            "It is required by the attention mask",
            False,
            "the attention mask marks padding; labels are a separate matter",
        ),
    ],
)
