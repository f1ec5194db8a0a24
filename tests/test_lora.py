"""LoRA: starts as the base model, trains only A and B, merge/unmerge keep the outputs, and the errors."""

import pytest
import torch
from torch import nn

from course_lib.gpt import GPT, GPTConfig
from course_lib.llama import Llama, LlamaConfig
from course_lib.lora import LoRALinear, add_lora, count_trainable, merge_lora


def _trained_lora(r: int = 4) -> tuple[LoRALinear, torch.Tensor]:
    torch.manual_seed(0)
    layer = LoRALinear(nn.Linear(16, 12), r=r, alpha=8.0)
    nn.init.normal_(layer.B)  # as if trained: B is no longer zero
    return layer, torch.randn(5, 3, 16)


def test_starts_as_the_base_layer():
    base = nn.Linear(16, 12)
    x = torch.randn(4, 16)
    expected = base(x)
    assert torch.equal(LoRALinear(base, r=4)(x), expected)


def test_forward_is_w_plus_scaled_ba_in_float64():
    layer, x = _trained_lora()
    layer.double()
    x = x.double()
    W = layer.base.weight + layer.scale * layer.B @ layer.A  # the update written as one matrix
    assert torch.allclose(layer(x), x @ W.T + layer.base.bias, atol=1e-12)


def test_merge_then_unmerge_keeps_outputs_and_weight():
    layer, x = _trained_lora()
    before, weight = layer(x), layer.base.weight.clone()
    layer.merge()
    assert layer.merged and torch.allclose(layer(x), before, atol=1e-5)
    layer.merge()  # a second merge is a no-op
    assert torch.allclose(layer(x), before, atol=1e-5)
    layer.unmerge()
    assert not layer.merged and torch.allclose(layer.base.weight, weight, atol=1e-6)
    assert torch.allclose(layer(x), before, atol=1e-5)


def test_only_a_and_b_get_gradients():
    layer, x = _trained_lora()
    layer(x).sum().backward()
    assert layer.base.weight.grad is None and layer.base.bias.grad is None
    assert layer.A.grad is not None and layer.B.grad is not None


def test_add_lora_on_gpt_counts_and_merges():
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=32)
    model = GPT(cfg)
    idx = torch.randint(50, (2, 10))
    reference = model(idx)[0]
    names = add_lora(model, ("attn.c_attn", "attn.c_proj"), r=4)
    assert names == [
        "transformer.h.0.attn.c_attn",
        "transformer.h.0.attn.c_proj",
        "transformer.h.1.attn.c_attn",
        "transformer.h.1.attn.c_proj",
    ]
    # per layer: c_attn A (4 x 32) + B (96 x 4), c_proj A (4 x 32) + B (32 x 4)
    assert count_trainable(model) == 2 * (4 * 32 + 96 * 4 + 4 * 32 + 32 * 4)
    assert torch.equal(model(idx)[0], reference)  # B = 0: exactly the pretrained model
    for module in model.modules():
        if isinstance(module, LoRALinear):
            nn.init.normal_(module.B, std=0.1)
    changed = model(idx)[0]
    assert not torch.allclose(changed, reference, atol=1e-3)
    merge_lora(model)
    assert torch.allclose(model(idx)[0], changed, atol=1e-5)


def test_bad_arguments():
    with pytest.raises(TypeError, match="wraps an nn.Linear"):
        LoRALinear(nn.Conv1d(3, 3, 1))
    with pytest.raises(ValueError, match="r=0"):
        LoRALinear(nn.Linear(8, 4), r=0)
    with pytest.raises(ValueError, match="r=5"):
        LoRALinear(nn.Linear(8, 4), r=5)
    with pytest.raises(ValueError, match="no nn.Linear in the model ends with"):
        add_lora(nn.Sequential(nn.Linear(4, 4)), ("attn.c_attn",))


def test_the_update_is_scaled_by_alpha_over_r():
    layer, x = _trained_lora(r=4)  # alpha 8: scale 2
    assert layer.scale == 2.0
    with torch.no_grad():
        by_hand = layer.base(x) + 2.0 * (x @ layer.A.T @ layer.B.T)
        torch.testing.assert_close(layer(x), by_hand)


def test_a_refused_add_lora_leaves_the_model_untouched():
    def fresh() -> GPT:
        torch.manual_seed(0)
        return GPT(GPTConfig(vocab_size=20, block_size=16, n_layer=2, n_head=4, n_embd=32))

    model = fresh()
    with pytest.raises(TypeError, match=r"targets must be a tuple of name endings, e.g. \('c_attn',\)"):
        add_lora(model, "c_attn")  # as a tuple of letters it would also wrap mlp.c_fc (ends with "c")
    with pytest.raises(ValueError, match="r=0"):
        add_lora(model, ("c_attn",), r=0)
    with pytest.raises(ValueError, match="r=24 .* = 20 for lm_head"):  # c_attn fits rank 24, lm_head (20 out) does not
        add_lora(model, ("c_attn", "lm_head"), r=24)
    assert not any(isinstance(m, LoRALinear) for m in model.modules())
    assert count_trainable(model) == count_trainable(fresh())  # nothing was frozen
    add_lora(model, ("c_attn",), r=4)
    with pytest.raises(ValueError, match="LoRA is already applied to"):
        add_lora(model, ("c_attn",), r=4)


def test_a_tied_output_layer_is_refused_and_an_untied_one_merges_exactly():
    gpt = GPT(GPTConfig(vocab_size=20, block_size=8, n_layer=1, n_head=2, n_embd=8))  # lm_head shares wte's matrix
    with pytest.raises(ValueError, match="lm_head's weight is tied to wte.weight; merging .* leave lm_head out"):
        add_lora(gpt, ("c_attn", "lm_head"), r=2)
    assert not any(isinstance(m, LoRALinear) for m in gpt.modules())
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=20, n_layer=1, n_head=2, n_kv_head=1, n_embd=8, d_ff=16, tie_embeddings=False)
    llama = Llama(config).eval()
    add_lora(llama, ("lm_head",), r=2)
    nn.init.normal_(llama.lm_head.B)  # as if trained
    x = torch.tensor([[1, 2, 3]])
    with torch.no_grad():
        before = llama(x)[0]
        merge_lora(llama)
        torch.testing.assert_close(llama(x)[0], before)
