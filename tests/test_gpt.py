"""GPT against Hugging Face's GPT2LMHeadModel with copied weights, plus generation, counts and clear errors."""

from __future__ import annotations

import pytest
import torch
import transformers
from torch.utils.flop_counter import FlopCounterMode

from course_lib.generate import sample_next
from course_lib.gpt import GPT, GPTConfig

# (n_layer, n_head, n_embd, vocab_size, n_positions, n_inner, activation)
SHAPES = [
    (2, 3, 48, 101, 37, None, "gelu_new"),  # 3 heads of width 16, odd vocab and block
    (1, 1, 8, 11, 5, None, "gelu_new"),  # a single head, tiny everything
    (3, 4, 32, 257, 64, 50, "gelu"),  # odd MLP width, exact GELU
    (2, 2, 24, 67, 16, None, "gelu_pytorch_tanh"),
]


def _hf_gpt2(n_layer, n_head, n_embd, vocab, n_pos, n_inner, act, seed=0):
    torch.manual_seed(seed)
    config = transformers.GPT2Config(
        n_layer=n_layer,
        n_head=n_head,
        n_embd=n_embd,
        vocab_size=vocab,
        n_positions=n_pos,
        n_inner=n_inner,
        activation_function=act,
        bos_token_id=0,
        eos_token_id=0,
    )
    model = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():  # random LayerNorm parameters, so a mixed-up ln_1/ln_2/ln_f would show
        for name, p in model.named_parameters():
            if ".ln_" in name:
                p.copy_(torch.randn_like(p) * 0.2 + (1.0 if name.endswith("weight") else 0.0))
    return model


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"L{s[0]}-H{s[1]}-C{s[2]}-V{s[3]}-T{s[4]}-{s[6]}")
def test_from_hf_logits_loss_and_greedy_match(shape):
    hf = _hf_gpt2(*shape)
    gpt = GPT.from_hf(hf).eval()
    vocab, T = shape[3], shape[4]
    idx = torch.randint(0, vocab, (3, T))
    targets = torch.cat((idx[:, 1:], torch.full((3, 1), -100)), dim=1)  # HF shifts labels itself
    targets[0, :2] = -100
    labels = idx.clone()
    labels[0, 1:3] = -100
    with torch.no_grad():
        ref = hf(idx, labels=labels)
        logits, loss = gpt(idx, targets)
    d_logits = (logits - ref.logits).abs().max().item()
    d_loss = (loss - ref.loss).abs().item()
    print(f"GPT.from_hf vs GPT2LMHeadModel {shape}: logits {d_logits:.1e}, loss {d_loss:.1e}")
    assert logits.shape == (3, T, vocab)
    assert d_logits < 1e-5 and d_loss < 1e-5

    prompt = idx[:, : max(1, T // 3)]
    n_new = min(T - prompt.shape[1], 16)  # fills the block for the small shapes; capped to keep the test quick
    with torch.no_grad():
        mask = torch.ones_like(prompt)  # else HF guesses padding from pad_token_id
        ref_tokens = hf.generate(
            prompt, attention_mask=mask, max_new_tokens=n_new, do_sample=False, pad_token_id=0, eos_token_id=None
        )
    cached = gpt.generate(prompt, n_new, temperature=0, use_cache=True)
    uncached = gpt.generate(prompt, n_new, temperature=0, use_cache=False)
    assert torch.equal(cached, ref_tokens) and torch.equal(uncached, ref_tokens)


def test_generation_slides_past_block_size_with_and_without_cache():
    hf = _hf_gpt2(2, 2, 16, 23, 8, None, "gelu_new", seed=1)
    gpt = GPT.from_hf(hf).eval()
    prompt = torch.randint(0, 23, (2, 3))
    ref = prompt
    with torch.no_grad():
        for _ in range(20):  # the reference: HF on the last 8 tokens, argmax
            nxt = hf(ref[:, -8:]).logits[:, -1].argmax(-1, keepdim=True)
            ref = torch.cat((ref, nxt), 1)
    cached = gpt.generate(prompt, 20, temperature=0, use_cache=True)
    uncached = gpt.generate(prompt, 20, temperature=0, use_cache=False)
    assert cached.shape == (2, 23)
    assert torch.equal(cached, ref) and torch.equal(uncached, ref)
    sampled = [
        gpt.generate(prompt, 20, temperature=1.5, top_k=10, use_cache=c, generator=torch.Generator().manual_seed(7))
        for c in (True, False)
    ]
    assert torch.equal(*sampled)


def test_generated_tokens_can_feed_a_training_step():
    """generate runs under inference_mode; what it returns must still be an ordinary tensor."""
    gpt = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8))
    out = gpt.eval().generate(torch.zeros((2, 1), dtype=torch.long), 6, temperature=0)
    assert not out.is_inference()
    gpt.train()
    loss = gpt(out[:, :-1], out[:, 1:])[1]
    loss.backward()  # embedding saves its indices for backward: an inference tensor here would raise
    assert gpt.wte.weight.grad is not None


def test_eos_stops_rows_and_generation():
    gpt = GPT(GPTConfig(vocab_size=5, block_size=16, n_layer=1, n_head=1, n_embd=8)).eval()
    with torch.no_grad():
        gpt.lm_head.weight.zero_()  # every logit 0: uniform over 5 tokens, so eos (0) comes soon in every row
    prompt = torch.tensor([[1, 2], [3, 4]])
    g = torch.Generator().manual_seed(0)
    out = gpt.generate(prompt, 200, eos_id=0, generator=g)
    assert out.shape[1] < 2 + 200, "generation should stop once every row has produced eos"
    for row in out:
        first = (row[2:] == 0).nonzero()[0, 0] + 2
        assert (row[first:] == 0).all(), "a row kept generating after its eos"
    assert gpt.generate(prompt, 0).shape == (2, 2)


def test_sample_next_refuses_what_would_sample_wrongly():
    logits = torch.tensor([[0.0, 5.0, 10.0]])
    with pytest.raises(ValueError, match="temperature must be a number >= 0"):  # -1 would favour the least likely
        sample_next(logits, temperature=-1)
    with pytest.raises(ValueError, match="top_p must be in"):
        sample_next(logits, top_p=1.5)
    with pytest.raises(ValueError, match=r"logits must be a \(batch, vocab\) tensor, got \(3,\)"):
        sample_next(logits[0])


def test_from_hf_keeps_the_checkpoints_layer_norm_epsilon():
    torch.manual_seed(0)
    hf = transformers.GPT2LMHeadModel(
        transformers.GPT2Config(n_layer=1, n_head=2, n_embd=8, vocab_size=10, layer_norm_epsilon=0.5)
    ).eval()
    gpt = GPT.from_hf(hf).eval()
    assert gpt.config.layer_norm_eps == 0.5  # a large eps, so a default 1e-5 would change the logits
    idx = torch.randint(0, 10, (2, 6))
    with torch.no_grad():
        torch.testing.assert_close(gpt(idx)[0], hf(idx).logits, rtol=0, atol=1e-5)


def test_top_k_above_the_vocabulary_keeps_every_token():
    logits = torch.tensor([[0.0, 1.0, 2.0, 3.0, 4.0]])
    drawn = sample_next(logits.expand(4000, 5), top_k=10, generator=torch.Generator().manual_seed(0))
    assert set(drawn.flatten().tolist()) == {0, 1, 2, 3, 4}


def test_sample_next_filters():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])).repeat(4000, 1)
    g = torch.Generator().manual_seed(0)
    assert (sample_next(logits, temperature=0) == 0).all()
    assert (sample_next(logits, top_k=1, generator=g) == 0).all()
    top2 = sample_next(logits, top_k=2, generator=g)
    assert set(top2.unique().tolist()) == {0, 1}
    assert (top2 == 0).float().mean().item() == pytest.approx(0.5 / 0.8, abs=0.03)
    nucleus = sample_next(logits, top_p=0.7, generator=g)  # 0.5 < 0.7 <= 0.8: tokens 0 and 1
    assert set(nucleus.unique().tolist()) == {0, 1}
    assert set(sample_next(logits, top_p=0.85, generator=g).unique().tolist()) == {0, 1, 2}
    exact = torch.log(torch.tensor([[0.5, 0.25, 0.125, 0.125]])).repeat(2000, 1)  # sums exact in binary
    assert set(sample_next(exact, top_p=0.75, generator=g).unique().tolist()) == {0, 1}  # 0.75 reached: stop
    cold = sample_next(logits, temperature=0.25, generator=g)  # p^4: token 0 gets 0.5^4 / sum ~ 0.88
    expected = 0.5**4 / (0.5**4 + 0.3**4 + 0.15**4 + 0.05**4)
    assert (cold == 0).float().mean().item() == pytest.approx(expected, abs=0.03)


def test_num_params_and_flops():
    hf = _hf_gpt2(2, 3, 48, 101, 37, None, "gelu_new")
    gpt = GPT.from_hf(hf)
    assert gpt.num_params(non_embedding=False) == sum(p.numel() for p in hf.parameters())
    assert gpt.num_params() == gpt.num_params(non_embedding=False) - 37 * 48
    with torch.device("meta"):
        small = GPT(GPTConfig())
    assert small.num_params(non_embedding=False) == 124_439_808  # GPT-2 small, the published count
    idx = torch.randint(0, 101, (2, 37))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        gpt(idx)
    counted = counter.get_total_flops() / idx.numel()
    print(f"flops_per_token {gpt.flops_per_token(37)} vs FlopCounterMode {counted}")
    assert gpt.flops_per_token(37) == counted
    assert gpt.flops_per_token(37, training=True) == 3 * counted


def test_shapes_dtypes_and_no_leak_across_batch_or_future():
    torch.manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=13, block_size=9, n_layer=2, n_head=2, n_embd=8)).eval()
    idx = torch.randint(0, 13, (4, 9))
    logits, loss = gpt(idx)
    assert logits.shape == (4, 9, 13) and logits.dtype == torch.float32 and loss is None
    _, loss = gpt(idx, idx)
    assert loss.shape == () and loss.dtype == torch.float32
    alone = torch.cat([gpt(idx[i : i + 1])[0] for i in range(4)])  # each row on its own: nothing mixes rows
    torch.testing.assert_close(logits, alone, rtol=0, atol=1e-6)
    changed = idx.clone()
    changed[:, 5:] = (changed[:, 5:] + 1) % 13
    later = gpt(changed)[0]
    torch.testing.assert_close(later[:, :5], logits[:, :5], rtol=0, atol=1e-6)  # no peeking at the future
    assert not torch.allclose(later[:, 5:], logits[:, 5:])
    assert gpt.double()(idx)[0].dtype == torch.float64
    assert gpt.wte.weight is gpt.lm_head.weight


def test_gpt2_initialisation():
    torch.manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=500, block_size=64, n_layer=8, n_head=4, n_embd=128))
    h = gpt.transformer.h[0]
    assert gpt.wte.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert h.mlp.c_fc.weight.std().item() == pytest.approx(0.02, rel=0.05)
    for proj in (h.attn.c_proj, h.mlp.c_proj):  # both write to the residual stream: 0.02 / sqrt(2 * 8)
        assert proj.weight.std().item() == pytest.approx(0.02 / 4, rel=0.05)
    assert (h.attn.c_attn.bias == 0).all() and (h.ln_1.weight == 1).all()


def test_training_step_reaches_every_parameter():
    torch.manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=13, block_size=8, n_layer=2, n_head=2, n_embd=8, dropout=0.1, bias=False))
    assert all(m.bias is None for m in gpt.modules() if isinstance(m, torch.nn.Linear | torch.nn.LayerNorm))
    idx = torch.randint(0, 13, (2, 8))
    loss = gpt(idx, idx)[1]
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in gpt.parameters())
    assert not torch.equal(gpt(idx)[0], gpt(idx)[0]), "dropout should be active in train mode"
    gpt.eval()
    assert torch.equal(gpt(idx)[0], gpt(idx)[0])


def test_bf16_autocast_on_cpu():
    torch.manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=32)).eval()
    idx = torch.randint(0, 50, (2, 16))
    ref, ref_loss = gpt(idx, idx)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, loss = gpt(idx, idx)
        out = gpt.generate(idx[:, :4], 4, temperature=0)
    assert logits.dtype == torch.bfloat16 and loss.dtype == torch.float32
    assert (logits.float() - ref).abs().max().item() < 1e-2  # measured 2.3e-3
    assert abs(loss.item() - ref_loss.item()) < 2.5e-4  # measured 5e-5
    assert out.shape == (2, 8)


def test_a_bf16_model_computes_its_loss_in_float32():
    torch.manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=32)).eval()
    idx = torch.randint(0, 50, (2, 16))
    ref, ref_loss = gpt(idx, idx)
    logits, loss = gpt.to(torch.bfloat16)(idx, idx)
    assert logits.dtype == torch.bfloat16 and loss.dtype == torch.float32
    assert (logits.float() - ref).abs().max().item() < 1e-2  # measured 2.3e-3
    assert abs(loss.item() - ref_loss.item()) < 1e-3  # measured 2.4e-4; a bf16 cross-entropy is off by ~1e-2


@pytest.mark.slow
def test_torch_compile_matches_eager():
    torch.manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=50, block_size=16, n_layer=1, n_head=2, n_embd=16)).eval()
    idx = torch.randint(0, 50, (2, 16))
    compiled = torch.compile(gpt)
    torch.testing.assert_close(compiled(idx, idx)[1], gpt(idx, idx)[1], rtol=1e-5, atol=1e-5)


def test_clear_errors():
    gpt = GPT(GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=2, n_embd=8))
    with pytest.raises(ValueError, match="9 tokens is longer than the 8 positions"):
        gpt(torch.zeros(1, 9, dtype=torch.long))
    with pytest.raises(ValueError, match="token id 10 is outside the vocabulary"):
        gpt(torch.tensor([[1, 10]]))
    with pytest.raises(ValueError, match="token id -3 is outside"):
        gpt(torch.tensor([[-3, 1]]))
    with pytest.raises(TypeError, match="integer token ids"):
        gpt(torch.tensor([[1.0, 2.0]]))
    with pytest.raises(ValueError, match="empty"):
        gpt(torch.zeros(2, 0, dtype=torch.long))
    with pytest.raises(TypeError, match="integer token ids, got dtype torch.uint8"):  # nn.Embedding would refuse it
        gpt(torch.tensor([[1, 2]], dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"targets has shape \(2, 4\), but the inputs need \(2, 3\)"):
        gpt(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"targets has shape \(3, 2\), but the inputs need \(2, 3\)"):
        gpt(torch.zeros(2, 3, dtype=torch.long), torch.zeros(3, 2, dtype=torch.long))  # same count, misaligned
    with pytest.raises(ValueError, match=r"targets holds 10, outside \[0, 10\)"):
        gpt(torch.zeros(1, 3, dtype=torch.long), torch.tensor([[1, 10, -100]]))
    with pytest.raises(ValueError, match="targets holds -1"):
        gpt(torch.zeros(1, 2, dtype=torch.long), torch.tensor([[1, -1]]))
    with pytest.raises(TypeError, match="targets must be an integer tensor"):
        gpt(torch.zeros(1, 2, dtype=torch.long), torch.zeros(1, 2))
    with pytest.raises(TypeError, match=r"\(int64\), got torch.int32; convert with targets.long\(\)"):  # the loss's
        gpt(torch.zeros(1, 2, dtype=torch.long), torch.zeros(1, 2, dtype=torch.int32))  # own error named Long/Byte
    assert gpt(torch.zeros(1, 2, dtype=torch.long), torch.tensor([[-100, 9]]))[1].isfinite()  # -100 is ignored
    for bad in (dict(n_inner=0), dict(n_inner=-4), dict(n_inner=2.5)):
        with pytest.raises(ValueError, match="GPTConfig.n_inner must be a positive int or None"):
            GPTConfig(**bad)
    with pytest.raises(ValueError, match="layer_norm_eps must be > 0"):
        GPTConfig(layer_norm_eps=-1.0)
    for p in (1.0, 1.5):  # 1.0 would zero every activation
        with pytest.raises(ValueError, match=r"dropout is a dropout probability in \[0, 1\)"):
            GPTConfig(dropout=p)
    with pytest.raises(ValueError, match="n_embd=10 is not divisible by n_head=3"):
        GPTConfig(n_embd=10, n_head=3)
    with pytest.raises(ValueError, match="vocab_size must be a positive int"):
        GPTConfig(vocab_size=0)
    with pytest.raises(ValueError, match="temperature must be a number >= 0"):
        gpt.generate(torch.zeros(1, 1, dtype=torch.long), 3, temperature=-1)
    with pytest.raises(ValueError, match="top_p must be in"):
        gpt.generate(torch.zeros(1, 1, dtype=torch.long), 3, top_p=0)
    with pytest.raises(ValueError, match="top_k must be"):
        gpt.generate(torch.zeros(1, 1, dtype=torch.long), 3, top_k=0)
    with pytest.raises(ValueError, match="top_k must be"):
        gpt.generate(torch.zeros(1, 1, dtype=torch.long), 3, top_k=True)
    with pytest.raises(ValueError, match="temperature must be a number"):
        gpt.generate(torch.zeros(1, 1, dtype=torch.long), 3, temperature=None)
    for eos in (10, -1, 2.5):
        with pytest.raises(ValueError, match=r"eos_id must be a token id in \[0, 10\)"):
            gpt.generate(torch.zeros(1, 1, dtype=torch.long), 3, eos_id=eos)
    with pytest.raises(ValueError, match=r"\(batch, time\)"):
        gpt.generate(torch.zeros(3, dtype=torch.long), 3)
    with pytest.raises(TypeError, match="GPT2LMHeadModel, got BertModel"):
        GPT.from_hf(transformers.BertModel(transformers.BertConfig(hidden_size=8, num_attention_heads=2)))
    hf = transformers.GPT2LMHeadModel(
        transformers.GPT2Config(n_layer=1, n_head=2, n_embd=8, vocab_size=10, scale_attn_by_inverse_layer_idx=True)
    )
    with pytest.raises(ValueError, match="scale_attn_by_inverse_layer_idx=True"):
        GPT.from_hf(hf)
    unscaled = transformers.GPT2LMHeadModel(
        transformers.GPT2Config(n_layer=1, n_head=2, n_embd=8, vocab_size=10, scale_attn_weights=False)
    )
    with pytest.raises(ValueError, match="scale_attn_weights"):
        GPT.from_hf(unscaled)


def test_top_level_exports():
    import course_lib

    assert course_lib.GPT is GPT and course_lib.GPTConfig is GPTConfig
