"""BERT and its heads against Hugging Face with copied weights, on padded batches, and on the real all-MiniLM-L6-v2."""

from __future__ import annotations

import json

import pytest
import torch
import transformers

from course_lib.bert import (
    BertConfig,
    BertForMaskedLM,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
)
from course_lib.data import minilm_dir

# (layers, heads, hidden, intermediate, vocab, max_positions, hidden_act)
SHAPES = [
    (2, 3, 48, 50, 101, 37, "gelu"),  # 3 heads of width 16, odd sizes everywhere
    (1, 1, 8, 16, 11, 9, "gelu"),
    (2, 2, 24, 40, 67, 16, "gelu_new"),  # the tanh GELU, in the encoder and the MLM head
]
SHAPE_IDS = [f"L{s[0]}-H{s[1]}-C{s[2]}-V{s[4]}-T{s[5]}-{s[6]}" for s in SHAPES]


def _hf_config(layers, heads, hidden, inter, vocab, max_pos, act, **extra):
    return transformers.BertConfig(
        num_hidden_layers=layers,
        num_attention_heads=heads,
        hidden_size=hidden,
        intermediate_size=inter,
        vocab_size=vocab,
        max_position_embeddings=max_pos,
        hidden_act=act,
        type_vocab_size=3,
        **extra,
    )


def _hf_model(cls_name, shape, seed=0, **extra):
    torch.manual_seed(seed)
    model = getattr(transformers, cls_name)(_hf_config(*shape, **extra)).eval()
    with torch.no_grad():  # random LayerNorm parameters and output bias, so a mixed-up name would show
        for name, p in model.named_parameters():
            if "LayerNorm" in name or name.endswith("predictions.bias"):
                p.copy_(torch.randn_like(p) * 0.2 + (1.0 if name.endswith("weight") else 0.0))
    return model


def _padded_batch(vocab, T, seed=1):
    """Three sequences of lengths T, T - 3 and 2, right-padded with id 0; mixed token types."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, vocab, (3, T), generator=g)
    mask = torch.ones(3, T, dtype=torch.long)
    mask[1, T - 3 :] = 0
    mask[2, 2:] = 0
    ids = ids.masked_fill(mask == 0, 0)
    types = torch.randint(0, 3, (3, T), generator=g) * mask
    return ids, mask, types


def _report(name, got, ref, keep):
    diff = (got - ref)[keep.bool()].abs().max().item()
    print(f"{name}: max abs diff {diff:.1e}")
    assert diff < 1e-5, f"{name} differs by {diff}"


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_bert_model_equals_hf_on_padded_batch(shape):
    hf = _hf_model("BertModel", shape)
    ours = BertModel.from_hf(hf).eval()
    ids, mask, types = _padded_batch(shape[4], shape[5])
    with torch.no_grad():
        ref = hf(ids, attention_mask=mask, token_type_ids=types)
        out = ours(ids, attention_mask=mask, token_type_ids=types)
    assert out.last_hidden_state.shape == (3, shape[5], shape[2]) and out.pooler_output.shape == (3, shape[2])
    _report(f"BertModel {shape} last_hidden_state", out.last_hidden_state, ref.last_hidden_state, mask)
    _report(f"BertModel {shape} pooler_output", out.pooler_output, ref.pooler_output, torch.ones(3))


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_masked_lm_equals_hf(shape):
    hf = _hf_model("BertForMaskedLM", shape)
    ours = BertForMaskedLM.from_hf(hf).eval()
    ids, mask, types = _padded_batch(shape[4], shape[5])
    labels = torch.full_like(ids, -100)
    labels[:, 1] = ids[:, 1]
    labels[0, 5] = ids[0, 5]
    with torch.no_grad():
        ref = hf(ids, attention_mask=mask, token_type_ids=types, labels=labels)
        logits, loss = ours(ids, attention_mask=mask, token_type_ids=types, labels=labels)
    assert logits.shape == (3, shape[5], shape[4])
    _report(f"BertForMaskedLM {shape} logits", logits, ref.logits, mask)
    _report(f"BertForMaskedLM {shape} loss", loss, ref.loss, torch.ones(()))
    assert ours.decoder.weight is ours.bert.embeddings.word_embeddings.weight


@pytest.mark.parametrize("num_labels,label_kind", [(3, "class"), (1, "regression"), (4, "multi-label")])
def test_sequence_classification_equals_hf(num_labels, label_kind):
    shape = SHAPES[0]
    hf = _hf_model("BertForSequenceClassification", shape, num_labels=num_labels)
    ours = BertForSequenceClassification.from_hf(hf).eval()
    assert ours.config.num_labels == num_labels
    ids, mask, types = _padded_batch(shape[4], shape[5])
    labels = {
        "class": torch.tensor([0, 2, 1]),
        "regression": torch.tensor([0.5, -1.0, 2.0]),
        "multi-label": torch.tensor([[1.0, 0, 0, 1], [0, 0, 0, 0], [1, 1, 1, 0]]),
    }[label_kind]
    with torch.no_grad():
        ref = hf(ids, attention_mask=mask, token_type_ids=types, labels=labels)
        logits, loss = ours(ids, attention_mask=mask, token_type_ids=types, labels=labels)
    assert logits.shape == (3, num_labels)
    _report(f"BertForSequenceClassification ({label_kind}) logits", logits, ref.logits, torch.ones(3))
    _report(f"BertForSequenceClassification ({label_kind}) loss", loss, ref.loss, torch.ones(()))


def test_token_classification_equals_hf():
    shape = SHAPES[0]
    hf = _hf_model("BertForTokenClassification", shape, num_labels=5)
    ours = BertForTokenClassification.from_hf(hf).eval()
    ids, mask, types = _padded_batch(shape[4], shape[5])
    labels = torch.randint(0, 5, ids.shape).masked_fill(mask == 0, -100)
    with torch.no_grad():
        ref = hf(ids, attention_mask=mask, token_type_ids=types, labels=labels)
        logits, loss = ours(ids, attention_mask=mask, token_type_ids=types, labels=labels)
    assert logits.shape == (3, shape[5], 5)
    _report("BertForTokenClassification logits", logits, ref.logits, mask)
    _report("BertForTokenClassification loss", loss, ref.loss, torch.ones(()))


@pytest.fixture
def minilm():
    """The real all-MiniLM-L6-v2 folder; a dev dependency, so a missing package fails these tests, not skips them."""
    return minilm_dir()


def test_real_minilm_weights_via_hf_and_via_safetensors(minilm):
    hf = transformers.BertModel.from_pretrained(minilm).eval()
    via_hf = BertModel.from_hf(hf).eval()
    direct = BertModel.from_pretrained(minilm).eval()
    assert direct.config.hidden_size == 384 and direct.config.num_hidden_layers == 6
    # [CLS] the cat sat on the mat [SEP] and a shorter, padded sentence
    ids = torch.tensor([[101, 1996, 4937, 2938, 2006, 1996, 13523, 102], [101, 7592, 2088, 102, 0, 0, 0, 0]])
    mask = (ids != 0).long()
    with torch.no_grad():
        ref = hf(ids, attention_mask=mask)
        for name, model in (("from_hf", via_hf), ("from_pretrained", direct)):
            out = model(ids, attention_mask=mask)
            _report(f"all-MiniLM-L6-v2 {name} last_hidden_state", out.last_hidden_state, ref.last_hidden_state, mask)
            _report(f"all-MiniLM-L6-v2 {name} pooler_output", out.pooler_output, ref.pooler_output, torch.ones(2))
    with pytest.raises(ValueError, match="lacks weights BertForMaskedLM needs"):
        BertForMaskedLM.from_pretrained(minilm)


def test_shapes_dtypes_and_padding_is_invisible():
    torch.manual_seed(0)
    config = BertConfig(30, 16, 2, 4, 24, max_position_embeddings=12)
    model = BertModel(config).eval()
    ids = torch.randint(1, 30, (2, 10))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    out = model(ids, attention_mask=mask)
    assert out.last_hidden_state.shape == (2, 10, 16) and out.last_hidden_state.dtype == torch.float32
    assert out.pooler_output.shape == (2, 16)
    alone = model(ids[1:, :6]).last_hidden_state  # the padded row, run without its padding
    torch.testing.assert_close(out.last_hidden_state[1:, :6], alone, rtol=0, atol=1e-5)
    other_pad = ids.clone()
    other_pad[1, 6:] = 7  # what sits under the padding must not matter
    under_pad = model(other_pad, attention_mask=mask).last_hidden_state[1, :6]
    torch.testing.assert_close(under_pad, alone[0], rtol=0, atol=1e-5)
    unmasked = model(other_pad).last_hidden_state[1, :6]  # and without the mask it would
    assert not torch.allclose(unmasked, alone[0], atol=1e-3)
    assert model.double()(ids).last_hidden_state.dtype == torch.float64


def test_bf16_autocast_on_cpu():
    torch.manual_seed(0)
    config = BertConfig(vocab_size=30, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=48)
    model = BertForMaskedLM(config).eval()
    ids = torch.randint(1, 30, (2, 8))
    ref, ref_loss = model(ids, labels=ids)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, loss = model(ids, labels=ids)
    assert logits.dtype == torch.bfloat16 and loss.dtype == torch.float32
    assert (logits.float() - ref).abs().max().item() < 5e-3  # measured 1.4e-3
    assert abs(loss.item() - ref_loss.item()) < 2.5e-4  # measured 3e-5


def test_top_level_exports():
    import course_lib

    assert course_lib.BertConfig is BertConfig and course_lib.BertModel is BertModel
    assert course_lib.BertForMaskedLM is BertForMaskedLM
    assert course_lib.BertForSequenceClassification is BertForSequenceClassification


def test_clear_errors(tmp_path):
    config = BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8)
    config.max_position_embeddings = 6  # a short model, so that a long input is cheap to build
    model = BertModel(config)
    ok = torch.ones(1, 4, dtype=torch.long)
    with pytest.raises(ValueError, match="7 tokens is longer than the 6 positions"):
        model(torch.ones(1, 7, dtype=torch.long))
    with pytest.raises(ValueError, match="token id 20 is outside the vocabulary"):
        model(torch.tensor([[1, 20]]))
    with pytest.raises(ValueError, match="token id -1 is outside"):
        model(torch.tensor([[1, -1]]))
    with pytest.raises(TypeError, match="integer token ids"):
        model(ok.float())
    with pytest.raises(ValueError, match="empty"):
        model(torch.ones(1, 0, dtype=torch.long))
    with pytest.raises(ValueError, match=r"attention_mask has shape \(1, 3\).*\(1, 4\)"):
        model(ok, attention_mask=torch.ones(1, 3))
    with pytest.raises(ValueError, match="token_type_ids has shape"):
        model(ok, token_type_ids=torch.zeros(1, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"token_type_ids holds 2, outside \[0, 2\): sentence ids run from 0 to 1"):
        model(ok, token_type_ids=torch.full((1, 4), 2))
    with pytest.raises(ValueError, match="hidden_size=10 is not divisible by num_attention_heads=4"):
        BertConfig(hidden_size=10, num_attention_heads=4)
    with pytest.raises(ValueError, match="hidden_act='relu'"):
        BertConfig(hidden_act="relu")
    with pytest.raises(ValueError, match="position_embedding_type='relative_key'"):
        BertConfig.from_dict({"position_embedding_type": "relative_key"})
    hf_mlm = transformers.BertForMaskedLM(_hf_config(*SHAPES[1]))
    with pytest.raises(TypeError, match="needs a transformers BertModel, got BertForMaskedLM"):
        BertModel.from_hf(hf_mlm)
    with pytest.raises(TypeError, match="needs a transformers BertForSequenceClassification, got GPT2LMHeadModel"):
        BertForSequenceClassification.from_hf(
            transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=1, n_head=2, n_embd=8, vocab_size=10))
        )
    with pytest.raises(FileNotFoundError, match="config.json not found"):
        BertModel.from_pretrained(tmp_path)
    small = dict(vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8)
    for bad, message in [
        (dict(pad_token_id=50), r"pad_token_id=50 must be an id in \[0, 20\)"),
        (dict(type_vocab_size=0), "type_vocab_size must be a positive int"),
        (dict(num_labels=0), "num_labels must be a positive int"),
        (dict(max_position_embeddings=0), "max_position_embeddings must be a positive int"),
        (dict(hidden_dropout_prob=1.0), "hidden_dropout_prob is a dropout probability"),
        (dict(layer_norm_eps=0.0), "layer_norm_eps must be > 0"),
    ]:
        with pytest.raises(ValueError, match=message):
            BertConfig(**(small | bad))


def test_fresh_weights_follow_berts_initialisation():
    config = BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8)
    model = BertForSequenceClassification(BertConfig(**(vars(config) | dict(pad_token_id=3, classifier_dropout=0.0))))
    assert model.bert.embeddings.word_embeddings.weight[3].eq(0).all()  # the padding row starts at zero
    assert model.dropout.p == 0.0  # an explicit 0 is not "unset"
    assert BertForSequenceClassification(config).dropout.p == config.hidden_dropout_prob


def test_masked_lm_head_uses_the_tanh_gelu_of_gelu_new():
    hf = _hf_model("BertForMaskedLM", SHAPES[2])  # hidden_act "gelu_new"
    with torch.no_grad():  # inputs large enough that the exact and the tanh GELU differ by far more than 1e-5
        hf.cls.predictions.transform.dense.weight.normal_(0, 1.0)
    ours = BertForMaskedLM.from_hf(hf).eval()
    ids, mask, types = _padded_batch(SHAPES[2][4], SHAPES[2][5])
    with torch.no_grad():
        _report("BertForMaskedLM gelu_new head", ours(ids, mask, types)[0], hf(ids, mask, types).logits, mask)


def test_heads_refuse_labels_that_would_broadcast_or_index_out_of_range():
    small = dict(vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8)
    ids = torch.ones(2, 3, dtype=torch.long)
    regression = BertForSequenceClassification(BertConfig(**small, num_labels=1))
    with pytest.raises(ValueError, match=r"labels has shape \(2, 1\); with num_labels=1 it must be \(2,\)"):
        regression(ids, labels=torch.zeros(2, 1))  # MSE would broadcast (2,) against (2, 1) to (2, 2)
    assert regression(ids, labels=torch.zeros(2))[1].isfinite()
    classes = BertForSequenceClassification(BertConfig(**small, num_labels=3))
    with pytest.raises(ValueError, match=r"labels holds 3, outside \[0, 3\)"):
        classes(ids, labels=torch.tensor([0, 3]))
    with pytest.raises(ValueError, match=r"labels has shape \(3,\), but the inputs need \(2,\)"):
        classes(ids, labels=torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"with num_labels=3 it must be \(2, 3\)"):
        classes(ids, labels=torch.zeros(2, 2))  # multi-label targets need one float per class
    tagger = BertForTokenClassification(BertConfig(**small, num_labels=3))
    with pytest.raises(ValueError, match=r"labels has shape \(3, 2\), but the inputs need \(2, 3\)"):
        tagger(ids, labels=torch.zeros(3, 2, dtype=torch.long))
    assert tagger(ids, labels=torch.tensor([[-100, 0, 2], [1, -100, -100]]))[1].isfinite()
    with pytest.raises(ValueError, match=r"labels holds 20, outside \[0, 20\)"):
        BertForMaskedLM(BertConfig(**small))(ids, labels=torch.tensor([[-100, 20, 1], [1, 2, 3]]))


def test_from_pretrained_gives_a_pretrained_encoder_a_new_head(minilm):
    encoder = BertModel.from_pretrained(minilm).eval()
    torch.manual_seed(0)
    clf = BertForSequenceClassification.from_pretrained(minilm, num_labels=3).eval()
    assert clf.config.num_labels == 3 and clf.classifier.weight.shape == (3, 384)
    assert clf.newly_initialized == ("classifier.weight", "classifier.bias")  # MiniLM ships its pooler
    assert clf.classifier.bias.abs().max() == 0 and 0.01 < clf.classifier.weight.std() < 0.03  # BERT's init
    ids = torch.tensor([[101, 1996, 4937, 2938, 102]])
    with torch.no_grad():
        torch.testing.assert_close(clf.bert(ids).pooler_output, encoder(ids).pooler_output, rtol=0, atol=0)
    tagger = BertForTokenClassification.from_pretrained(minilm, num_labels=12, classifier_dropout=0.2)
    assert tagger.classifier.out_features == 12 and tagger.dropout.p == 0.2
    assert tagger.newly_initialized == ("classifier.weight", "classifier.bias")
    with pytest.raises(TypeError, match=r"\['num_label'\].*not BertConfig fields"):
        BertForSequenceClassification.from_pretrained(minilm, num_label=3)


def test_from_pretrained_reads_an_mlm_checkpoint_in_fp16(tmp_path):
    """The shape scripts/pretrain_bert.py writes: our key names, float16, the tied decoder stored once, no pooler."""
    from safetensors.torch import save_file

    torch.manual_seed(0)
    config = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32)
    mlm = BertForMaskedLM(config).eval()
    state = {k: v.half().contiguous() for k, v in mlm.state_dict().items() if k != "decoder.weight"}
    save_file(state, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps({**config.__dict__, "model_type": "bert"}))
    back = BertForMaskedLM.from_pretrained(tmp_path).eval()
    assert back.newly_initialized == () and back.bert.embeddings.word_embeddings.weight.dtype == torch.float32
    assert torch.equal(back.decoder.weight, mlm.bert.embeddings.word_embeddings.weight.half().float())
    clf = BertForSequenceClassification.from_pretrained(tmp_path)
    assert set(clf.newly_initialized) == {
        "bert.pooler.weight",
        "bert.pooler.bias",
        "classifier.weight",
        "classifier.bias",
    }
    ids = torch.tensor([[1, 5, 7, 2]])
    with torch.no_grad():
        torch.testing.assert_close(clf.eval().bert(ids).last_hidden_state, back.bert(ids).last_hidden_state)
    del state["bert.encoder.h.1.mlp.c_fc.weight"]  # an encoder weight is never new: its absence is an error
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(
        ValueError, match="lacks weights BertForSequenceClassification needs: bert.encoder.h.1.mlp.c_fc.weight"
    ):
        BertForSequenceClassification.from_pretrained(tmp_path)


def test_inputs_as_lists_or_an_additive_mask_are_refused_before_running():
    """What a Hugging Face tokenizer gives without return_tensors, and the other mask convention."""
    small = dict(vocab_size=20, hidden_size=8, num_hidden_layers=2, num_attention_heads=2, intermediate_size=8)
    torch.manual_seed(0)
    bert = BertModel(BertConfig(**small)).eval()
    ids, mask = torch.ones(2, 6, dtype=torch.long), torch.tensor([[1] * 6, [1] * 4 + [0] * 2])
    with pytest.raises(TypeError, match=r"attention_mask must be a torch.Tensor, got list; use torch.tensor"):
        bert(ids, attention_mask=[[1] * 6] * 2)
    with pytest.raises(
        TypeError, match=r"token_type_ids must be a torch.Tensor of token ids, got list; use torch.tensor"
    ):
        bert(ids, token_type_ids=[[0] * 6] * 2)
    additive = torch.zeros(2, 6).masked_fill(mask == 0, float("-inf"))
    with pytest.raises(ValueError, match=r"1 for tokens and 0 for padding .*\(mask == 0\).long\(\)"):
        bert(ids, attention_mask=additive)  # .bool() would turn -inf into True: the padding attended, the rest not
    with torch.no_grad():
        want = bert(ids, attention_mask=mask)
        for same in (mask.bool(), mask.float(), (additive == 0).long()):
            torch.testing.assert_close(bert(ids, attention_mask=same), want, rtol=0, atol=0)
        torch.testing.assert_close(
            bert(ids[1:, :4]).last_hidden_state, want.last_hidden_state[1:, :4], rtol=0, atol=1e-6
        )
    classes = BertForSequenceClassification(BertConfig(**small, num_labels=2)).eval()
    with pytest.raises(TypeError, match=r"labels must be a torch.Tensor, got list; use torch.tensor\(labels\)"):
        classes(ids, labels=[0, 1])
    regression = BertForSequenceClassification(BertConfig(**small, num_labels=1)).eval()
    with pytest.raises(TypeError, match=r"labels must be a torch.Tensor, got list"):
        regression(ids, labels=[0.5, 1.0])
    assert classes(ids, labels=torch.tensor([0, 1]))[1].isfinite()


def test_labels_that_are_all_ignored_are_refused_rather_than_a_nan_loss():
    small = dict(vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8)
    ids = torch.ones(2, 3, dtype=torch.long)
    mlm = BertForMaskedLM(BertConfig(**small)).eval()
    with pytest.raises(ValueError, match=r"every target in labels is -100 \(ignored\), so there is nothing to compute"):
        mlm(ids, labels=torch.full_like(ids, -100))
    tagger = BertForTokenClassification(BertConfig(**small, num_labels=3)).eval()
    with pytest.raises(ValueError, match="every target in labels is -100"):
        tagger(ids, labels=torch.full_like(ids, -100))
    labels = torch.full_like(ids, -100)
    labels[1, 2] = 7
    logits, loss = mlm(ids, labels=labels)  # one counted target: the loss is its cross-entropy
    torch.testing.assert_close(loss, torch.nn.functional.cross_entropy(logits[1, 2:3], labels[1, 2:3]))


def _saved_classifier(tmp_path, **changes):
    from safetensors.torch import save_file

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, **changes
    )
    model = BertForSequenceClassification(config).eval()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps({**config.__dict__, "model_type": "bert"}))
    return model


def test_from_pretrained_refuses_to_change_what_the_checkpoint_fixes(tmp_path):
    saved = _saved_classifier(tmp_path, num_labels=2)
    for change, stored in (("vocab_size", 40), ("max_position_embeddings", 512), ("num_attention_heads", 2)):
        with pytest.raises(
            ValueError, match=rf"{change} is fixed by the checkpoint \({stored}\): .*; only num_labels, .* can change"
        ):
            BertModel.from_pretrained(tmp_path, **{change: 100 if change != "num_attention_heads" else 4})
    ids = torch.tensor([[1, 5, 7, 2]])
    back = BertForSequenceClassification.from_pretrained(tmp_path, hidden_dropout_prob=0.0, vocab_size=40).eval()
    assert back.newly_initialized == () and back.bert.embeddings.dropout.p == 0.0
    with torch.no_grad():
        torch.testing.assert_close(back(ids)[0], saved(ids)[0], rtol=0, atol=0)
    torch.manual_seed(0)
    three = BertForSequenceClassification.from_pretrained(tmp_path, num_labels=3).eval()  # a new head for 3 classes
    assert three.classifier.weight.shape == (3, 16)
    assert three.newly_initialized == ("classifier.weight", "classifier.bias")
    with torch.no_grad():
        torch.testing.assert_close(three.bert(ids), saved.bert(ids), rtol=0, atol=0)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "vocab_size": 50}))  # a config that lies
    with pytest.raises(
        ValueError, match=r"word_embeddings.weight has shape \(40, 16\) but the config needs \(50, 16\)"
    ):
        BertModel.from_pretrained(tmp_path)


def test_from_hf_refuses_a_course_lib_model():
    small = BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8)
    with pytest.raises(
        TypeError, match=r"BertModel.from_hf takes a transformers model .* got course_lib's own BertModel"
    ):
        BertModel.from_hf(BertModel(small))
