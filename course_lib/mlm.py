"""Masked-language-model data: BERT's 80/10/10 masking rule and fixed-length training windows (chapter 07).

BERT learns by filling in blanks. Of the ordinary tokens in a sequence, ``mask_prob`` (15%) are picked as
prediction targets; of those, 80% are replaced by ``[MASK]``, 10% by a random token and 10% are left as they
are. The last two cases exist because ``[MASK]`` never appears when the model is later fine-tuned: if every
target were a ``[MASK]``, the model could learn to care about its input only where it sees one. Random and
unchanged targets force it to keep a good representation of every token, since any of them may be graded.
"""

from __future__ import annotations

import numbers
from collections.abc import Collection, Sequence
from typing import NamedTuple

import torch
from torch import Tensor

IGNORE_INDEX = -100  # what F.cross_entropy skips: positions that are not prediction targets


class MaskedBatch(NamedTuple):
    input_ids: Tensor  # (B, T) what the model sees: some tokens replaced by [MASK] or a random token
    labels: Tensor  # (B, T) the original token at each target position, IGNORE_INDEX elsewhere


def mask_tokens(
    input_ids: Tensor,
    mask_id: int,
    vocab_size: int,
    special_ids: Collection[int] = (),
    mask_prob: float = 0.15,
    generator: torch.Generator | None = None,
) -> MaskedBatch:
    """Apply the 80/10/10 rule to ``input_ids`` (any shape, integer) and return the inputs and labels.

    Random numbers are drawn in a fixed order so that a hand-written version with the same generator gives
    the same result: ``u = rand(shape)`` picks the targets (``u < mask_prob``, never a special token),
    ``v = rand(shape)`` decides each target's fate (``v < 0.8``: ``[MASK]``; ``0.8 <= v < 0.9``: random;
    otherwise unchanged) and ``r = randint(vocab_size, shape)`` holds the random tokens. As in the original
    BERT, a random token is drawn from the whole vocabulary.

    Targets are drawn, not counted out: a short input can come back with none (a 6-token sentence does for
    about a third of seeds), and a model refuses labels that are all -100, since their loss would be 0/0.
    Mask whole batches of windows, as chapter 07 does, where a batch without a target does not happen.
    """
    if not isinstance(input_ids, Tensor) or input_ids.is_floating_point() or input_ids.dtype == torch.bool:
        what = f"a {input_ids.dtype} tensor" if isinstance(input_ids, Tensor) else f"a {type(input_ids).__name__}"
        raise TypeError(f"input_ids must be an integer tensor of token ids, got {what}; convert with .long()")
    if not 0.0 < mask_prob < 1.0:
        raise ValueError(f"mask_prob must lie strictly between 0 and 1 (BERT uses 0.15), got {mask_prob!r}")
    if not 0 <= mask_id < vocab_size:
        raise ValueError(f"mask_id={mask_id} is not an id of a vocabulary of vocab_size={vocab_size}")
    if isinstance(special_ids, (str, Tensor)) or not isinstance(special_ids, Collection):
        raise TypeError(
            f"special_ids must be a list, tuple or set of token ids ([CLS], [SEP], [PAD], ...), got {special_ids!r}; "
            "pass () if no token is special"
        )
    if not all(isinstance(i, numbers.Integral) and not isinstance(i, bool) for i in special_ids):
        raise TypeError(f"special_ids must hold int token ids, got {list(special_ids)!r}")
    if input_ids.numel() and (input_ids.min() < 0 or input_ids.max() >= vocab_size):
        raise ValueError(
            f"input_ids hold ids in [{input_ids.min().item()}, {input_ids.max().item()}] but vocab_size={vocab_size}; "
            "pass the vocabulary size of the tokenizer that made them"
        )
    shape = input_ids.shape
    u = torch.rand(shape, generator=generator)
    v = torch.rand(shape, generator=generator)
    r = torch.randint(vocab_size, shape, generator=generator)
    ids = input_ids.cpu().long()
    special = torch.isin(ids, torch.tensor([int(i) for i in special_ids], dtype=torch.long))
    target = (u < mask_prob) & ~special
    labels = torch.where(target, ids, torch.full_like(ids, IGNORE_INDEX))
    masked = torch.where(target & (v < 0.8), torch.full_like(ids, mask_id), ids)
    masked = torch.where(target & (v >= 0.8) & (v < 0.9), r, masked)
    return MaskedBatch(masked.to(input_ids.device), labels.to(input_ids.device))


def pack_windows(sequences: Sequence[Sequence[int]], block_size: int, cls_id: int, sep_id: int) -> Tensor:
    """Cut a corpus into ``(N, block_size)`` windows of ``[CLS] tokens... [SEP]``, with no padding.

    Sentences are joined, each followed by ``[SEP]``, into one stream, which is cut into pieces of
    ``block_size - 2`` tokens; each piece gets its own ``[CLS]`` in front and ``[SEP]`` at the end. A window
    thus spans several sentences, as in BERT's pre-training, and every position carries a real token, so no
    compute goes to padding. The incomplete last piece is dropped.
    """
    if not isinstance(block_size, int) or block_size < 3:
        raise ValueError(f"block_size must be an int of at least 3 ([CLS], a token, [SEP]), got {block_size!r}")
    stream = [t for seq in sequences for t in (*seq, sep_id)]
    body = block_size - 2
    n = len(stream) // body
    if n == 0:
        raise ValueError(f"the corpus has {len(stream)} tokens, fewer than one window of {body}; use more text")
    pieces = torch.tensor(stream[: n * body], dtype=torch.long).view(n, body)  # (N, T-2)
    cls = torch.full((n, 1), cls_id, dtype=torch.long)
    sep = torch.full((n, 1), sep_id, dtype=torch.long)
    return torch.cat([cls, pieces, sep], dim=1)  # (N, T)


@torch.no_grad()
def masked_accuracy(logits: Tensor, labels: Tensor) -> tuple[int, int]:
    """(correct, total) over the target positions (``labels != IGNORE_INDEX``) of a batch."""
    target = labels != IGNORE_INDEX
    correct = (logits.argmax(-1)[target] == labels[target]).sum().item()
    return int(correct), int(target.sum().item())


__all__ = ["IGNORE_INDEX", "MaskedBatch", "mask_tokens", "masked_accuracy", "pack_windows"]
