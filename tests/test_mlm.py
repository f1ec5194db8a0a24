"""course_lib.mlm: the 80/10/10 masking rule, window packing and masked accuracy."""

import pytest
import torch

from course_lib.mlm import IGNORE_INDEX, mask_tokens, masked_accuracy, pack_windows

VOCAB, MASK, SPECIAL = 1000, 4, (0, 2, 3)


def test_rates_follow_the_80_10_10_rule():
    ids = torch.randint(5, VOCAB, (400, 256), generator=torch.Generator().manual_seed(0))
    x, y = mask_tokens(ids, MASK, VOCAB, SPECIAL, generator=torch.Generator().manual_seed(1))
    target = y != IGNORE_INDEX
    n = target.sum().item()
    assert abs(n / ids.numel() - 0.15) < 0.005
    as_mask = (x[target] == MASK).sum().item() / n
    unchanged = (x[target] == ids[target]).sum().item() / n
    assert abs(as_mask - 0.8) < 0.01
    assert abs(unchanged - 0.1) < 0.01  # a random draw equal to the original (1 in 1000) barely moves this
    assert abs(1 - as_mask - unchanged - 0.1) < 0.01  # the rest: random tokens
    assert torch.equal(y[target], ids[target])  # labels hold the originals
    assert torch.equal(x[~target], ids[~target])  # non-targets untouched


def test_equals_an_element_by_element_loop_with_the_same_draws():
    ids = torch.randint(0, 50, (3, 17), generator=torch.Generator().manual_seed(2))
    g = torch.Generator().manual_seed(3)
    u, v, r = (
        torch.rand(ids.shape, generator=g),
        torch.rand(ids.shape, generator=g),
        torch.randint(50, ids.shape, generator=g),
    )
    expect_x, expect_y = ids.clone(), torch.full_like(ids, IGNORE_INDEX)
    for i in range(ids.shape[0]):
        for j in range(ids.shape[1]):
            if ids[i, j].item() in SPECIAL or u[i, j] >= 0.3:
                continue
            expect_y[i, j] = ids[i, j]
            if v[i, j] < 0.8:
                expect_x[i, j] = MASK
            elif v[i, j] < 0.9:
                expect_x[i, j] = r[i, j]
    x, y = mask_tokens(ids, MASK, 50, SPECIAL, mask_prob=0.3, generator=torch.Generator().manual_seed(3))
    assert torch.equal(x, expect_x) and torch.equal(y, expect_y)


def test_special_tokens_are_never_targets():
    ids = torch.tensor([[2, 7, 8, 9, 3, 0, 0]] * 500)
    x, y = mask_tokens(ids, MASK, 10, SPECIAL, mask_prob=0.9, generator=torch.Generator().manual_seed(0))
    special = torch.isin(ids, torch.tensor(SPECIAL))
    assert (y[special] == IGNORE_INDEX).all() and torch.equal(x[special], ids[special])
    assert (y[~special] != IGNORE_INDEX).float().mean() > 0.85


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (dict(input_ids=torch.zeros(2, 3)), TypeError, "integer tensor of token ids, got a torch.float32 tensor"),
        (dict(mask_prob=0.0), ValueError, r"mask_prob must lie strictly between 0 and 1 .*, got 0.0"),
        (dict(mask_prob=1.5), ValueError, r"mask_prob must lie strictly between 0 and 1 .*, got 1.5"),
        (dict(mask_id=10), ValueError, "mask_id=10 is not an id of a vocabulary of vocab_size=10"),
        (dict(input_ids=torch.tensor([[1, 10]])), ValueError, r"input_ids hold ids in \[1, 10\] but vocab_size=10"),
        # None would be read as "nothing special": [CLS] and [SEP] graded
        (dict(special_ids=None), TypeError, r"special_ids must be a list, tuple or set .*, got None; pass \(\)"),
        (dict(special_ids="0"), TypeError, "special_ids must be a list, tuple or set .*, got '0'"),
        (dict(special_ids=(0, 1.0)), TypeError, r"special_ids must hold int token ids, got \[0, 1.0\]"),
    ],
)
def test_bad_arguments_are_refused(kwargs, error, message):
    args = dict(input_ids=torch.tensor([[1, 2]]), mask_id=4, vocab_size=10) | kwargs
    with pytest.raises(error, match=message):
        mask_tokens(**args)


def test_pack_windows():
    windows = pack_windows([[5, 6, 7], [8], [9, 10]], block_size=5, cls_id=2, sep_id=3)
    # stream: 5 6 7 S 8 S 9 10 S -> pieces of 3: [5 6 7] [S 8 S] [9 10 S]
    assert windows.tolist() == [[2, 5, 6, 7, 3], [2, 3, 8, 3, 3], [2, 9, 10, 3, 3]]
    with pytest.raises(ValueError, match="block_size"):
        pack_windows([[5]], block_size=2, cls_id=2, sep_id=3)
    with pytest.raises(ValueError, match="fewer than one window"):
        pack_windows([[5]], block_size=10, cls_id=2, sep_id=3)


def test_masked_accuracy_counts_only_targets():
    logits = torch.zeros(1, 3, 4)
    logits[0, 0, 1] = logits[0, 1, 2] = logits[0, 2, 3] = 1.0  # predicts 1, 2, 3
    labels = torch.tensor([[1, IGNORE_INDEX, 0]])
    assert masked_accuracy(logits, labels) == (1, 2)


def test_special_ids_may_be_any_collection_of_ints():
    ids = torch.arange(10).repeat(20, 1)
    runs = [
        mask_tokens(ids, 4, 10, special, mask_prob=0.5, generator=torch.Generator().manual_seed(0))
        for special in ((0, 1), [1, 0], {0, 1})
    ]
    for x, y in runs:
        assert torch.equal(x, runs[0].input_ids) and torch.equal(y, runs[0].labels)
    assert (runs[0].labels[:, :2] == IGNORE_INDEX).all()
