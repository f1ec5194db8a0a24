"""The shared core: each switch checked against float64 math written here, and a Llama-style stack against HF."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import transformers

from course_lib.attention import KVCache
from course_lib.transformer import (
    MLP,
    Block,
    BlockConfig,
    RMSNorm,
    Transformer,
    check_attention_mask,
    check_labels,
    check_token_ids,
    out_of_range,
)


def _randomise(module: nn.Module, seed: int = 0) -> nn.Module:
    """Give every parameter (norm scales and biases too) a random value, so no switch hides behind a 1 or a 0."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3 + (1.0 if p.dim() == 1 and p.shape[0] > 0 else 0.0))
    return module


def test_rmsnorm_against_float64_formula():
    norm = _randomise(RMSNorm(8, eps=1e-6))
    x = torch.randn(3, 5, 8)
    w = norm.weight.double()
    ref = x.double() / torch.sqrt((x.double() ** 2).mean(-1, keepdim=True) + 1e-6) * w
    diff = (norm(x).double() - ref).abs().max().item()
    print(f"RMSNorm vs float64 formula: {diff:.1e}")
    assert diff < 1e-6
    assert norm(x.double()).dtype == torch.float64  # float64 is not silently rounded to float32
    assert norm.bfloat16()(x.bfloat16()).dtype == torch.bfloat16


@pytest.mark.parametrize("kind", ["gelu", "gelu_tanh", "swiglu"])
def test_mlp_against_float64_formula(kind):
    cfg = BlockConfig(n_embd=8, n_head=2, d_ff=12, mlp=kind, bias=kind != "swiglu")
    mlp = _randomise(MLP(cfg))
    x = torch.randn(2, 3, 8, dtype=torch.float64)

    def lin(layer, t):
        out = t @ layer.weight.double().T
        return out + layer.bias.double() if layer.bias is not None else out

    h = lin(mlp.c_fc, x)
    if kind == "gelu":
        h = 0.5 * h * (1 + torch.erf(h / math.sqrt(2)))
    elif kind == "gelu_tanh":
        h = 0.5 * h * (1 + torch.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h**3)))
    else:
        gate = lin(mlp.c_gate, x)
        h = gate * torch.sigmoid(gate) * h  # silu(gate) * up
    ref = lin(mlp.c_proj, h)
    diff = (mlp.double()(x) - ref).abs().max().item()
    print(f"MLP {kind} vs float64 formula: {diff:.1e}")
    assert diff < 1e-12
    assert (mlp.c_fc.bias is None) == (kind == "swiglu")


@pytest.mark.parametrize("prenorm", [True, False])
def test_block_residual_layout(prenorm):
    cfg = BlockConfig(n_embd=8, n_head=2, prenorm=prenorm)
    block = _randomise(Block(cfg)).double().eval()
    x = torch.randn(2, 4, 8, dtype=torch.float64)

    def attn(t):
        return block.attn(t, is_causal=True)[0]

    if prenorm:
        h = x + attn(block.ln_1(x))
        ref = h + block.mlp(block.ln_2(h))
    else:
        h = block.ln_1(x + attn(x))
        ref = block.ln_2(h + block.mlp(h))
    torch.testing.assert_close(block(x, is_causal=True), ref, rtol=0, atol=1e-12)
    other = Block(BlockConfig(n_embd=8, n_head=2, prenorm=not prenorm)).double().eval()
    other.load_state_dict(block.state_dict())
    assert not torch.allclose(other(x, is_causal=True), ref)  # the switch really changes the computation


def test_config_errors():
    with pytest.raises(ValueError, match="n_embd=10 is not divisible by n_head=4"):
        BlockConfig(n_embd=10, n_head=4)
    with pytest.raises(ValueError, match="norm='batchnorm'"):
        BlockConfig(n_embd=8, n_head=2, norm="batchnorm")
    with pytest.raises(ValueError, match="mlp='relu'"):
        BlockConfig(n_embd=8, n_head=2, mlp="relu")
    for bad, message in [
        (dict(d_ff=0), "d_ff must be a positive int or None"),  # 0 must not mean "the default width"
        (dict(n_head=0), "n_head must be a positive int"),
        (dict(n_kv_head=0), "n_kv_head must be a positive int or None"),
        (dict(dropout=1.5), r"dropout is a dropout probability in \[0, 1\)"),
        (dict(attn_dropout=-0.1), "attn_dropout is a dropout probability"),
        (dict(norm_eps=-1.0), "norm_eps must be > 0"),
    ]:
        with pytest.raises(ValueError, match=message):
            BlockConfig(**(dict(n_embd=8, n_head=2) | bad))
    torch.manual_seed(0)
    explicit = Block(BlockConfig(n_embd=10, n_head=3, head_dim=4))  # 10 is not divisible by 3, and need not be
    assert explicit(torch.randn(2, 5, 10), is_causal=True).shape == (2, 5, 10)
    for n_layer in (0, -1):
        with pytest.raises(ValueError, match="n_layer must be a positive int"):
            Transformer(BlockConfig(n_embd=8, n_head=2), n_layer)


class _LlamaLike(nn.Module):
    """A Llama-style decoder assembled from the core in a few lines, as course_lib.llama will do."""

    def __init__(self, hf_config) -> None:
        super().__init__()
        c = hf_config
        cfg = BlockConfig(
            n_embd=c.hidden_size,
            n_head=c.num_attention_heads,
            n_kv_head=c.num_key_value_heads,
            d_ff=c.intermediate_size,
            norm="rmsnorm",
            norm_eps=c.rms_norm_eps,
            mlp="swiglu",
            bias=False,
            rope_base=c.rope_parameters["rope_theta"],
        )
        self.embed = nn.Embedding(c.vocab_size, c.hidden_size)
        self.transformer = Transformer(cfg, c.num_hidden_layers)
        self.lm_head = nn.Linear(c.hidden_size, c.vocab_size, bias=False)

    def forward(self, idx, cache=None):
        return self.lm_head(self.transformer(self.embed(idx), is_causal=True, cache=cache))

    def load_hf(self, sd: dict) -> None:
        state = {"embed.weight": sd["model.embed_tokens.weight"], "lm_head.weight": sd["lm_head.weight"]}
        state["transformer.ln_f.weight"] = sd["model.norm.weight"]
        for i in range(len(self.transformer.h)):
            p, q = f"model.layers.{i}.", f"transformer.h.{i}."
            qkv = [sd[f"{p}self_attn.{n}_proj.weight"] for n in "qkv"]
            state[f"{q}attn.c_attn.weight"] = torch.cat(qkv)
            names = {
                "attn.c_proj": "self_attn.o_proj",
                "mlp.c_gate": "mlp.gate_proj",
                "mlp.c_fc": "mlp.up_proj",
                "mlp.c_proj": "mlp.down_proj",
                "ln_1": "input_layernorm",
                "ln_2": "post_attention_layernorm",
            }
            for ours, theirs in names.items():
                state[f"{q}{ours}.weight"] = sd[f"{p}{theirs}.weight"]
        self.load_state_dict(state, strict=True)


@pytest.mark.parametrize("n_kv_head,theta", [(2, 10000.0), (4, 500.0), (1, 100000.0)])
def test_llama_style_core_equals_hf_llama(n_kv_head, theta):
    torch.manual_seed(6)
    hf_config = transformers.LlamaConfig(
        hidden_size=32,
        intermediate_size=40,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=n_kv_head,
        vocab_size=29,
        max_position_embeddings=64,
        rope_parameters={"rope_type": "default", "rope_theta": theta},
        pad_token_id=None,
        bos_token_id=None,
        eos_token_id=None,
    )
    hf = transformers.LlamaForCausalLM(hf_config).eval()
    with torch.no_grad():  # random norm scales, so a mix-up of ln_1 and ln_2 shows
        for name, p in hf.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)
    ours = _LlamaLike(hf_config).eval()
    ours.load_hf(hf.state_dict())
    idx = torch.randint(0, 29, (2, 11))
    with torch.no_grad():
        ref = hf(idx).logits
        got = ours(idx)
        cache = KVCache()
        stepped = torch.cat(
            [ours(idx[:, :5], cache=cache)] + [ours(idx[:, t : t + 1], cache=cache) for t in range(5, 11)], 1
        )
    diff = (got - ref).abs().max().item()
    print(f"Llama-style core vs HF LlamaForCausalLM (n_kv_head={n_kv_head}, theta={theta}): {diff:.1e}")
    assert diff < 1e-5
    torch.testing.assert_close(stepped, ref, rtol=0, atol=1e-5)


def test_check_token_ids_errors():
    with pytest.raises(TypeError, match="integer token ids.*float32.*long"):
        check_token_ids(torch.zeros(1, 3), 10, 8)
    with pytest.raises(TypeError, match="torch.Tensor"):
        check_token_ids([[1, 2]], 10, 8)
    with pytest.raises(ValueError, match=r"shape \(batch, time\).*idx\[None\]"):
        check_token_ids(torch.tensor([1, 2]), 10, 8)
    with pytest.raises(ValueError, match="empty"):
        check_token_ids(torch.zeros(1, 0, dtype=torch.long), 10, 8)
    with pytest.raises(ValueError, match="9 tokens is longer than the 8 positions.*last 8 tokens"):
        check_token_ids(torch.zeros(1, 9, dtype=torch.long), 10, 8)
    with pytest.raises(ValueError, match="token id 10 is outside the vocabulary \\[0, 10\\)"):
        check_token_ids(torch.tensor([[1, 10]]), 10, 8)
    with pytest.raises(ValueError, match="token id -1 is outside"):
        check_token_ids(torch.tensor([[-1, 3]]), 10, 8)
    check_token_ids(torch.tensor([[0, 9]]), 10, 8)  # the edges are fine
    with pytest.raises(ValueError, match="2 tokens after 7 cached is longer than the 8 positions.*last 1 tokens"):
        check_token_ids(torch.zeros(1, 2, dtype=torch.long), 10, 8, offset=7)  # the cache counts towards the window
    check_token_ids(torch.zeros(1, 1, dtype=torch.long), 10, 8, offset=7)
    with pytest.raises(ValueError, match=r"attention_mask has shape \(2, 3\).*\(2, 4\)"):
        check_attention_mask(torch.ones(2, 3), (2, 4))


def test_check_labels_refuses_lists_and_labels_that_are_all_ignored():
    with pytest.raises(
        TypeError, match=r"labels must be a torch.Tensor of class ids, got list; use torch.tensor\(labels\)"
    ):
        check_labels([0, 1], (2,), 3)
    with pytest.raises(
        TypeError, match=r"integer tensor of class ids \(int64\), got torch.float32; convert with labels.long\(\)"
    ):
        check_labels(torch.zeros(2), (2,), 3)
    with pytest.raises(
        ValueError, match=r"every target in targets is -100 \(ignored\), so there is nothing to compute a loss"
    ):
        check_labels(torch.full((2, 3), -100), (2, 3), 10, name="targets")  # the mean over no targets: NaN
    check_labels(torch.tensor([[-100, -100, 9], [-100, -100, -100]]), (2, 3), 10)  # one counted target is enough
    with pytest.raises(ValueError, match=r"labels holds -5, outside \[0, 10\)"):
        check_labels(torch.tensor([[-100, -5, 9]]), (1, 3), 10)
    with pytest.raises(ValueError, match=r"labels holds 10, outside \[0, 10\)"):
        check_labels(torch.tensor([[-100, 10, 9]]), (1, 3), 10)
    assert out_of_range(torch.tensor([-100, 3]), 4, ignore=-100) is None and out_of_range(torch.tensor([0, 4]), 4) == 4
    assert out_of_range(torch.full((3,), -100), 4, ignore=-100) is None  # out_of_range itself only checks the range


def test_a_decoder_refuses_targets_that_are_all_ignored():
    from course_lib.gpt import GPT, GPTConfig

    torch.manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=2, n_embd=8)).eval()
    x = torch.tensor([[1, 2, 3, 4]])
    with pytest.raises(ValueError, match="every target in targets is -100 .*nothing to compute a loss on"):
        gpt(x, torch.full_like(x, -100))
    targets = torch.tensor([[-100, -100, 5, -100]])
    logits, loss = gpt(x, targets)
    torch.testing.assert_close(loss, torch.nn.functional.cross_entropy(logits[0, 2:3], targets[0, 2:3]))


def test_transformer_refuses_an_additive_padding_mask_and_reads_a_good_one_once(monkeypatch):
    torch.manual_seed(0)
    core = Transformer(BlockConfig(n_embd=8, n_head=2, prenorm=False), n_layer=3).eval()
    x, mask = torch.randn(2, 4, 8), torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    with pytest.raises(
        ValueError, match=r"1 for tokens and 0 for padding .*additive 0/-inf mask, pass \(mask == 0\).long"
    ):
        core(x, attention_mask=torch.zeros(2, 4).masked_fill(mask == 0, float("-inf")))
    with pytest.raises(TypeError, match=r"use torch.tensor\(attention_mask\)"):
        core(x, attention_mask=mask.tolist())
    with pytest.raises(ValueError, match=r"attention_mask has shape \(2, 3\) but the input needs \(2, 4\)"):
        check_attention_mask(torch.ones(2, 3), (2, 4))
    reads = []
    real_all = torch.Tensor.all
    monkeypatch.setattr(torch.Tensor, "all", lambda t, *a, **k: reads.append(1) or real_all(t, *a, **k))
    out = core(x, attention_mask=mask)
    assert len(reads) == 1  # checked in Transformer.forward, not again in each of the 3 layers
    monkeypatch.undo()
    torch.testing.assert_close(out, core(x, attention_mask=mask.bool()), rtol=0, atol=0)
    torch.testing.assert_close(out[1, :2], core(x[1:, :2])[0], rtol=0, atol=1e-6)  # padding changes nothing
