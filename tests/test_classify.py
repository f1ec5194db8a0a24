"""GPT sequence classification: equal to Hugging Face's GPT2ForSequenceClassification, padding-invariant."""

import math

import pytest
import torch

from course_lib.classify import GPTForSequenceClassification, last_token_index
from course_lib.gpt import GPT, GPTConfig

transformers = pytest.importorskip("transformers")


def _pair(pad_id: int = 0):
    """A tiny HF classifier and ours with copied weights (HF's score layer has no bias: ours is zeroed)."""
    torch.manual_seed(0)
    hf_cfg = transformers.GPT2Config(
        vocab_size=40,
        n_positions=16,
        n_embd=32,
        n_layer=2,
        n_head=4,
        num_labels=3,
        pad_token_id=pad_id,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    hf = transformers.GPT2ForSequenceClassification(hf_cfg).eval()
    lm = transformers.GPT2LMHeadModel(hf_cfg)
    lm.transformer.load_state_dict(hf.transformer.state_dict())
    ours = GPTForSequenceClassification(GPT.from_hf(lm), num_labels=3).eval()
    with torch.no_grad():
        ours.head.weight.copy_(hf.score.weight)
        ours.head.bias.zero_()
    return hf, ours


def test_equal_to_hf_on_a_right_padded_batch():
    hf, ours = _pair(pad_id=0)
    ids = torch.tensor([[5, 6, 7, 8, 9], [11, 12, 13, 0, 0], [21, 0, 0, 0, 0]])
    mask = (ids != 0).long()
    with torch.no_grad():
        expected = hf(input_ids=ids).logits  # HF finds the last token that is not pad_token_id
        logits, _ = ours(ids, mask)
    assert torch.allclose(logits, expected, atol=1e-5)


def test_padding_does_not_change_a_sentence():
    _, ours = _pair()
    sentence = torch.tensor([[3, 4, 5]])
    padded = torch.tensor([[3, 4, 5, 1, 1, 1]])
    mask = torch.tensor([[1, 1, 1, 0, 0, 0]])
    with torch.no_grad():
        assert torch.allclose(ours(sentence)[0], ours(padded, mask)[0], atol=1e-6)


def test_features_are_what_the_lm_head_reads():
    _, ours = _pair()
    ids = torch.tensor([[3, 4, 5, 6]])
    with torch.no_grad():
        lm_logits = ours.gpt(ids)[0][:, -1]  # (1, vocab)
        assert torch.allclose(ours.gpt.lm_head(ours.features(ids)), lm_logits, atol=1e-5)


def test_loss_is_cross_entropy():
    _, ours = _pair()
    ids, labels = torch.tensor([[3, 4], [5, 6]]), torch.tensor([0, 2])
    logits, loss = ours(ids, labels=labels)
    assert torch.allclose(loss, torch.nn.functional.cross_entropy(logits, labels))


def test_bad_masks_and_labels():
    _, ours = _pair()
    with pytest.raises(ValueError, match="padding on the right"):
        last_token_index(torch.tensor([[0, 1, 1]]))
    with pytest.raises(ValueError, match="all padding"):
        last_token_index(torch.tensor([[0, 0]]))
    with pytest.raises(ValueError, match="must match"):
        ours(torch.tensor([[1, 2]]), torch.tensor([[1, 1, 0]]))
    with pytest.raises(ValueError, match="num_labels"):
        GPTForSequenceClassification(ours.gpt, num_labels=1)
    ids = torch.tensor([[1, 2], [3, 4]])
    with pytest.raises(ValueError, match=r"labels holds 3, outside \[0, 3\)"):
        ours(ids, labels=torch.tensor([0, 3]))
    with pytest.raises(ValueError, match=r"labels has shape \(2, 1\), but the inputs need \(2,\)"):
        ours(ids, labels=torch.tensor([[0], [1]]))


def test_train_classifier_refuses_bad_data_before_the_first_step():
    from course_lib.classify import predict_classes, train_classifier
    from course_lib.train import TrainConfig

    _, ours = _pair()
    seqs, labels = [[1, 2], [3, 4, 5], [6]], [0, 1, 2]
    cfg = TrainConfig(max_steps=2, batch_size=2, warmup_steps=1, eval_interval=0, device="cpu")
    before = [p.clone() for p in ours.parameters()]
    for args, message in [
        ((seqs, [0, 1, 3]), r"labels holds 3, outside \[0, 3\)"),  # found now, not when its batch comes up
        (([], []), "0 sequences and 0 labels; give at least one"),
        ((seqs, labels, cfg, (seqs, [1])), "3 val sequences and 1 val labels"),  # would broadcast into accuracy
        ((seqs, labels, cfg, (seqs, [0, 1, 5])), "val labels holds 5"),
    ]:
        with pytest.raises(ValueError, match=message):
            train_classifier(ours, *args[:2], cfg, *args[3:])
    assert all(torch.equal(a, b) for a, b in zip(before, ours.parameters(), strict=True))  # no step was taken
    with pytest.raises(ValueError, match="0 sequences"):
        predict_classes(ours, [])


def test_train_classifier_passes_labels_by_name():
    """BERT's third positional argument is token_type_ids; the loop must not put labels there."""
    from course_lib.bert import BertConfig, BertForSequenceClassification
    from course_lib.classify import train_classifier
    from course_lib.train import TrainConfig

    torch.manual_seed(0)
    config = BertConfig(vocab_size=40, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8)
    seqs, labels = _toy_task()
    cfg = TrainConfig(max_steps=3, batch_size=8, warmup_steps=1, eval_interval=0, device="cpu")
    history = train_classifier(BertForSequenceClassification(config), seqs, labels, cfg)
    assert len(history.train_loss) == 3 and all(math.isfinite(x) for x in history.train_loss)


def _toy_task():
    """Sentences whose class is whether token 7 occurs: learnable in a few steps, and order-independent."""
    g = torch.Generator().manual_seed(0)
    seqs, labels = [], []
    for i in range(64):
        n = int(torch.randint(2, 9, (1,), generator=g))
        seq = torch.randint(8, 30, (n,), generator=g).tolist()
        if i % 2:
            seq[int(torch.randint(n, (1,), generator=g))] = 7
        seqs.append(seq)
        labels.append(i % 2)
    return seqs, labels


def test_train_classifier_learns_and_is_reproducible():
    from course_lib.classify import predict_classes, train_classifier
    from course_lib.train import TrainConfig

    seqs, labels = _toy_task()
    cfg = TrainConfig(
        max_steps=60, batch_size=16, learning_rate=3e-3, warmup_steps=5, eval_interval=20, seed=0, device="cpu"
    )
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = GPTForSequenceClassification(
            GPT(GPTConfig(vocab_size=40, block_size=16, n_layer=1, n_head=2, n_embd=32))
        )
        runs.append(train_classifier(model, seqs, labels, cfg, val=(seqs, labels), pad_id=0))
    assert runs[0].train_loss == runs[1].train_loss  # same seed, same batches, same losses
    assert runs[0].eval_steps == [0, 20, 40, 60]
    assert runs[0].val_accuracy[-1] >= 0.9 > runs[0].val_accuracy[0]  # learned, from chance
    predicted, probs = predict_classes(model, seqs, pad_id=0)
    model.eval()
    with torch.no_grad():  # one sentence at a time, no padding: the order predict_classes must restore
        alone = torch.cat([model(torch.tensor([s]))[0].softmax(-1) for s in seqs])
    assert torch.allclose(probs, alone, atol=1e-5)
    assert (predicted == torch.tensor(labels)).float().mean().item() == runs[1].val_accuracy[-1]
    assert torch.allclose(probs.sum(1), torch.ones(len(seqs)))


def test_predict_classes_sends_batches_to_the_models_device():
    """A model on a GPU gets its batches there (checked with a stub that records where its inputs are)."""
    from course_lib.classify import predict_classes

    class Stub(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(2))
            self.seen = set()

        def forward(self, ids, mask):
            self.seen |= {ids.device, mask.device}
            return self.w + ids.float().sum(1, keepdim=True) * torch.tensor([0.0, 1.0], device=ids.device), None

    stub = Stub()
    predicted, probs = predict_classes(stub, [[1, 2], [0], [3]], pad_id=0)
    assert stub.seen == {stub.w.device}
    assert predicted.tolist() == [1, 0, 1] and probs.device.type == "cpu"
