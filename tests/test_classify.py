"""GPT sequence classification: equal to Hugging Face's GPT2ForSequenceClassification, padding-invariant."""

import math

import pytest
import torch
import transformers

from course_lib.classify import GPTForSequenceClassification, last_token_index
from course_lib.gpt import GPT, GPTConfig


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
    with pytest.raises(ValueError, match=r"attention_mask has shape \(1, 3\) but the input needs \(1, 2\)"):
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
    """Batches go where the model's weights are: here the meta device, which no CPU tensor is on by accident."""
    from course_lib.classify import predict_classes

    class Stub(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(2, device="meta"))
            self.seen = set()

        def forward(self, ids, mask):
            self.seen |= {ids.device.type, mask.device.type}
            return torch.zeros(len(ids), 2), None  # CPU logits: meta tensors hold no numbers

    stub = Stub()
    predicted, probs = predict_classes(stub, [[1, 2], [0], [3]], pad_id=0)
    assert stub.seen == {"meta"}
    assert predicted.shape == (3,) and probs.shape == (3, 2) and probs.device.type == "cpu"


def test_train_classifier_sets_the_schedule_and_clips_before_each_step(monkeypatch):
    """What reaches the optimizer: lr_at(step) in every group (warmup, then cosine) and clipped gradients."""
    import course_lib.classify
    from course_lib.train import TrainConfig, configure_optimizer, lr_at

    seen = []

    def recording(*args, **kwargs):
        optimizer = configure_optimizer(*args, **kwargs)

        def before_step(opt, _args, _kwargs):
            grads = [p.grad for group in opt.param_groups for p in group["params"] if p.grad is not None]
            seen.append(
                (
                    [group["lr"] for group in opt.param_groups],
                    torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])).item(),
                )
            )

        optimizer.register_step_pre_hook(before_step)
        return optimizer

    monkeypatch.setattr(course_lib.classify, "configure_optimizer", recording)
    seqs, labels = _toy_task()
    cfg = TrainConfig(max_steps=12, batch_size=8, learning_rate=1e-2, min_lr=1e-3, warmup_steps=4, grad_clip=1e-3,
                      eval_interval=0, seed=0, device="cpu")  # fmt: skip
    torch.manual_seed(0)
    model = GPTForSequenceClassification(GPT(GPTConfig(vocab_size=40, block_size=16, n_layer=1, n_head=2, n_embd=32)))
    course_lib.classify.train_classifier(model, seqs, labels, cfg, pad_id=0)
    assert len(seen) == cfg.max_steps
    for step, (lrs, norm) in enumerate(seen):
        assert lrs == [lr_at(step, cfg)] * len(lrs), step  # rises for 4 steps, then decays to min_lr
        assert norm == pytest.approx(cfg.grad_clip, rel=1e-4), step  # any real gradient is far above 1e-3


def test_train_classifier_stops_when_the_loss_is_not_finite():
    from course_lib.classify import train_classifier

    seqs, labels = _toy_task()
    model = GPTForSequenceClassification(GPT(GPTConfig(vocab_size=40, block_size=16, n_layer=1, n_head=2, n_embd=32)))
    with torch.no_grad():
        model.head.weight.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="loss became nan at step 0: the run diverged"):
        train_classifier(model, seqs, labels, _quick(), pad_id=0)


def test_gpt_classifier_refuses_an_additive_or_list_mask():
    model = _tiny_classifier()
    ids = torch.tensor([[1, 2, 3]])
    with pytest.raises(ValueError, match="additive 0/-inf mask"):
        model(ids, torch.tensor([[0.0, 0.0, float("-inf")]]))
    with pytest.raises(TypeError, match="attention_mask must be a torch.Tensor"):
        model(ids, [[1, 1, 1]])


def _tiny_classifier(vocab_size: int = 20, block_size: int = 8) -> GPTForSequenceClassification:
    torch.manual_seed(0)
    return GPTForSequenceClassification(
        GPT(GPTConfig(vocab_size=vocab_size, block_size=block_size, n_layer=1, n_head=2, n_embd=16))
    )


def _quick(**changes):
    from course_lib.train import TrainConfig

    return TrainConfig(**{**dict(max_steps=2, batch_size=4, warmup_steps=1, eval_interval=0, device="cpu"), **changes})


def test_train_classifier_refuses_texts_and_named_labels():
    from course_lib.classify import predict_classes, train_classifier

    clf = _tiny_classifier()
    with pytest.raises(TypeError, match="sequence 0 is a str, not a list of token ids; encode the texts first"):
        train_classifier(clf, ["a b", "c"], [0, 1], _quick())
    with pytest.raises(TypeError, match="labels must be class ids 0..K-1, got 'pos'.*map them to ids first"):
        train_classifier(clf, [[1, 2], [3]], ["pos", "neg"], _quick())
    with pytest.raises(TypeError, match="val sequence 1 is a str"):
        train_classifier(clf, [[1, 2], [3]], [0, 1], _quick(), val=([[1], "c"], [0, 1]))
    with pytest.raises(TypeError, match=r"val must be a pair \(sequences, labels\), got 3 items"):
        train_classifier(clf, [[1, 2], [3]], [0, 1], _quick(), val=([[1], [2]], [0, 1], None))
    with pytest.raises(TypeError, match="sequence 0 is a str"):
        predict_classes(clf, ["a good film"])
    with pytest.raises(TypeError, match="pad_id must be an int"):
        predict_classes(clf, [[1, 2]], pad_id=None)


def test_train_classifier_checks_every_sequence_against_the_model_before_step_0():
    from course_lib.classify import predict_classes, train_classifier

    clf = _tiny_classifier(vocab_size=20, block_size=8)
    before = [p.clone() for p in clf.parameters()]
    seqs, labels = [[1, 2, 3]] * 399 + [list(range(12))], [0, 1] * 200  # one sentence longer than 8 positions
    cfg = _quick(max_steps=300, block_size=8)
    with pytest.raises(ValueError, match="sequence 399 has 12 tokens but the model has 8 positions; truncate"):
        train_classifier(clf, seqs, labels, cfg)
    with pytest.raises(ValueError, match=r"val sequence 1 holds token id 25, outside the model's vocabulary \[0, 20\)"):
        train_classifier(clf, seqs[:200], labels[:200], cfg, val=([[1, 2], [25, 3]], [0, 1]))
    with pytest.raises(ValueError, match=r"sequence 0 holds token id -1"):
        train_classifier(clf, [[-1, 2]], [0], cfg)
    assert all(torch.equal(a, b) for a, b in zip(before, clf.parameters(), strict=True))  # no step was taken
    with pytest.raises(ValueError, match="sequence 1 has 9 tokens but the model has 8 positions"):
        predict_classes(clf, [[1], list(range(9))])


def test_train_classifier_reads_a_berts_limits_from_its_config():
    from course_lib.bert import BertConfig, BertForSequenceClassification
    from course_lib.classify import train_classifier

    sizes = dict(hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8)
    config = BertConfig(vocab_size=40, max_position_embeddings=6, **sizes)
    bert = BertForSequenceClassification(config)
    with pytest.raises(ValueError, match="sequence 1 has 7 tokens but the model has 6 positions"):
        train_classifier(bert, [[1, 2], list(range(7))], [0, 1], _quick())
    with pytest.raises(ValueError, match=r"sequence 0 holds token id 40, outside the model's vocabulary \[0, 40\)"):
        train_classifier(bert, [[40, 2], [1]], [0, 1], _quick())


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(grad_accum_steps=2), "does not support grad_accum_steps"),
        (dict(eval_batches=5), "does not support eval_batches .* whole val set"),
        (dict(out_dir="ckpt"), "does not support out_dir .*save_checkpoint"),
        (dict(checkpoint_interval=10), "does not support checkpoint_interval"),
        (dict(precision="bf16"), "does not support precision='bf16'; it trains in fp32"),
        (dict(compile=True), "does not support compile=True"),
    ],
)
def test_train_classifier_refuses_config_fields_it_would_ignore(changes, message):
    from course_lib.classify import train_classifier

    with pytest.raises(ValueError, match=message):
        train_classifier(_tiny_classifier(), [[1, 2], [3]], [0, 1], _quick(**changes))


def test_train_classifier_device_none_means_get_device(monkeypatch):
    """As TrainConfig documents: None is course_lib.get_device(), which honours COURSE_DEVICE."""
    import course_lib.classify as classify

    asked = []
    monkeypatch.setattr(classify, "get_device", lambda prefer=None: asked.append(prefer) or torch.device("cpu"))
    seqs, labels = [[1, 2], [3]], [0, 1]
    for device, precision, compile_ in ((None, "auto", None), ("cpu", "fp32", False)):  # accepted: what it does
        history = classify.train_classifier(
            _tiny_classifier(), seqs, labels, _quick(device=device, precision=precision, compile=compile_)
        )
        assert len(history.train_loss) == 2
    assert asked == [None, "cpu"]
