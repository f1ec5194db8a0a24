"""The Llama-style model and the GGUF loader, checked against Hugging Face ``transformers``.

Two independent references: ``LlamaForCausalLM`` with our weights copied in (tiny random configs,
float64, so any difference is a real bug), and ``transformers``' own GGUF reader, which dequantizes
and un-permutes the real SmolLM2 file without any of our code.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from course_lib.attention import KVCache
from course_lib.gpt import GPT, GPTConfig
from course_lib.llama import (
    ChatModel,
    GGUFFile,
    Llama,
    LlamaConfig,
    config_from_gguf,
    llama_from_gguf,
    logit_lens,
    read_gguf,
    render_chat,
    to_hf_state_dict,
    tokenizer_from_gguf,
    unpermute_rotary,
)

# SmolLM2 in float32 through 30 blocks: two implementations that sum in different orders differ by
# about 1e-5 on logits of size ~20; the tolerance leaves room for other CPUs' kernels.
LOGIT_ATOL = 1e-3
TINY = dict(vocab_size=97, n_layer=2, n_head=6, n_kv_head=2, n_embd=48, d_ff=80, rope_base=500.0, block_size=64)


def hf_config(config: LlamaConfig):
    return transformers.LlamaConfig(
        vocab_size=config.vocab_size,
        hidden_size=config.n_embd,
        intermediate_size=config.d_ff,
        num_hidden_layers=config.n_layer,
        num_attention_heads=config.n_head,
        num_key_value_heads=config.n_kv_head,
        max_position_embeddings=config.block_size,
        rms_norm_eps=config.norm_eps,
        rope_theta=config.rope_base,
        tie_word_embeddings=config.tie_embeddings,
        attention_bias=False,
        mlp_bias=False,
    )


# Hugging Face computes RMSNorm and the rotary angles in float32 even for float64 inputs, so float32
# rounding (about 1e-7 relative, on logits up to ~60 for these random weights) is the floor.
TINY_TOL = dict(atol=1e-4, rtol=1e-5)


def tiny_pair(tie: bool, dtype=torch.float32):
    torch.manual_seed(0)
    config = LlamaConfig(**TINY, tie_embeddings=tie)
    ours = Llama(config).to(dtype).eval()
    with torch.no_grad():  # RMSNorm weights start at one; randomise them so a swapped norm would show
        for name, p in ours.named_parameters():
            if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
                p.copy_(1 + 0.3 * torch.randn_like(p))
    hf = transformers.LlamaForCausalLM(hf_config(config)).to(dtype).eval()
    hf.load_state_dict(to_hf_state_dict(ours), strict=True)
    return ours, hf


# ----------------------------------------------------------------------------- the model vs Hugging Face


@pytest.mark.parametrize("tie", [True, False])
def test_tiny_llama_matches_hf_logits(tie):
    ours, hf = tiny_pair(tie)
    idx = torch.randint(0, TINY["vocab_size"], (3, 17), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got, want = ours(idx)[0], hf(idx).logits
    assert got.shape == (3, 17, TINY["vocab_size"])
    torch.testing.assert_close(got, want, **TINY_TOL)
    assert (ours.lm_head.weight is ours.wte.weight) == tie


def test_tiny_llama_kv_cache_decoding_matches_full_forward():
    ours, hf = tiny_pair(tie=True)
    idx = torch.randint(0, TINY["vocab_size"], (2, 12), generator=torch.Generator().manual_seed(2))
    cache = KVCache()
    with torch.no_grad():
        steps = [ours(idx[:, :5], cache=cache)[0]]  # a prompt of 5 tokens, then one token at a time
        steps += [ours(idx[:, t : t + 1], cache=cache)[0] for t in range(5, 12)]
        full = hf(idx).logits
    torch.testing.assert_close(torch.cat(steps, dim=1), full, **TINY_TOL)
    assert len(cache) == 12


def test_tiny_llama_loss_and_greedy_generation_match_hf():
    ours, hf = tiny_pair(tie=False)
    idx = torch.randint(0, TINY["vocab_size"], (2, 9), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        loss = ours(idx[:, :-1], targets=idx[:, 1:])[1]  # HF shifts the labels itself
        torch.testing.assert_close(loss, hf(idx, labels=idx).loss, atol=1e-5, rtol=1e-5)
        want = hf.generate(idx, max_new_tokens=8, do_sample=False, min_new_tokens=8, pad_token_id=0)
    assert torch.equal(ours.generate(idx, max_new_tokens=8, temperature=0), want)
    assert torch.equal(ours.generate(idx, max_new_tokens=8, temperature=0, use_cache=False), want)


def test_llama_parameter_count_is_smollm2s():
    with torch.device("meta"):
        model = Llama(LlamaConfig())
    per_block = 2 * 576 * 576 + 2 * 576 * 192 + 3 * 576 * 1536 + 2 * 576  # attention, SwiGLU, two RMSNorms
    assert model.num_params() == 49152 * 576 + 30 * per_block + 576 == 134_515_008


@pytest.mark.parametrize(
    "bad, match",
    [
        (dict(n_head=0), "n_head must be a positive int"),
        (dict(n_kv_head=4), "not divisible by n_kv_head=4"),
        (dict(norm_eps=-1.0), "norm_eps must be > 0"),  # would give NaN logits
        (dict(rope_base=0.0), "rope_base must be a finite number > 0"),  # garbage angles, no NaN to notice
        (dict(rope_base=-10_000.0), "rope_base must be a finite number > 0"),
        (dict(rope_base=float("inf")), "rope_base must be a finite number > 0"),
        (dict(rope_base="10000"), "rope_base must be a finite number > 0"),
    ],
)
def test_bad_configs_are_rejected_with_a_reason(bad, match):
    with pytest.raises(ValueError, match=match):
        Llama(LlamaConfig(**{**TINY, **bad}))


def test_out_of_range_token_is_rejected_before_running():
    ours, _ = tiny_pair(tie=True)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        ours(torch.tensor([[1, TINY["vocab_size"]]]))
    with pytest.raises(ValueError, match="outside the vocabulary"):  # the lens embeds before running the model
        logit_lens(ours, torch.tensor([[1, TINY["vocab_size"]]]))


# ----------------------------------------------------------------------------- GGUF pieces


def llama_cpp_permute(w: torch.Tensor, n_head: int) -> torch.Tensor:
    """What llama.cpp's converter does to q/k rows: each head's (2, hs/2) halves become interleaved pairs."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).transpose(1, 2).reshape(w.shape)


def tiny_gguf(tie: bool, norm_eps: float = 1e-3) -> tuple[Llama, GGUFFile]:
    """A tiny Llama and the GGUF file llama.cpp's converter would write for it (names, permuted q/k rows)."""
    torch.manual_seed(0)
    model = Llama(LlamaConfig(**TINY, norm_eps=norm_eps, tie_embeddings=tie)).eval()
    c, sd = model.config, {k: v.detach().numpy() for k, v in to_hf_state_dict(model).items()}
    names = {"self_attn.o_proj": "attn_output", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}
    names |= {"mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    tensors = {"token_embd.weight": sd["model.embed_tokens.weight"], "output_norm.weight": sd["model.norm.weight"]}
    if not tie:
        tensors["output.weight"] = sd["lm_head.weight"]
    for i in range(c.n_layer):
        p = f"model.layers.{i}."
        for hf, ours in names.items():
            tensors[f"blk.{i}.{ours}.weight"] = sd[f"{p}{hf}.weight"]
        for x, heads in (("q", c.n_head), ("k", c.n_kv_head)):
            w = torch.from_numpy(sd[f"{p}self_attn.{x}_proj.weight"])
            tensors[f"blk.{i}.attn_{x}.weight"] = llama_cpp_permute(w, heads).numpy()
        tensors[f"blk.{i}.attn_v.weight"] = sd[f"{p}self_attn.v_proj.weight"]
    metadata = {
        "general.architecture": "llama",
        "tokenizer.ggml.tokens": [str(i) for i in range(c.vocab_size)],
        "llama.block_count": c.n_layer,
        "llama.attention.head_count": c.n_head,
        "llama.attention.head_count_kv": c.n_kv_head,
        "llama.embedding_length": c.n_embd,
        "llama.feed_forward_length": c.d_ff,
        "llama.rope.freq_base": c.rope_base,
        "llama.attention.layer_norm_rms_epsilon": norm_eps,
        "llama.context_length": c.block_size,
    }
    return model, GGUFFile(metadata, tensors, stored_bytes=0, tensor_types={})


@pytest.mark.parametrize("tie", [True, False])
def test_a_gguf_file_round_trips_into_the_same_model(tie):
    model, gguf = tiny_gguf(tie)
    loaded = llama_from_gguf(gguf)
    assert loaded.config == model.config  # norm_eps 1e-3 and the tie come from the file, not the defaults
    assert (loaded.lm_head.weight is loaded.wte.weight) == tie
    assert loaded.num_params() == model.num_params()
    idx = torch.randint(0, TINY["vocab_size"], (1, 9), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(loaded(idx)[0], model(idx)[0], rtol=0, atol=1e-5)
    gguf.metadata["llama.rope.dimension_count"] = TINY["n_embd"] // TINY["n_head"] // 2
    with pytest.raises(ValueError, match="partial RoPE"):
        config_from_gguf(gguf)


def test_incomplete_gguf_metadata_names_the_missing_key():
    _, gguf = tiny_gguf(tie=True)
    del gguf.metadata["llama.feed_forward_length"]
    with pytest.raises(ValueError, match="GGUF metadata has no 'llama.feed_forward_length'; the file is incomplete"):
        config_from_gguf(gguf)


def test_unpermute_rotary_inverts_llama_cpps_permutation():
    w = torch.randn(6 * 8, 5)  # 6 heads of size 8
    assert torch.equal(unpermute_rotary(llama_cpp_permute(w, 6), 6), w)
    assert not torch.equal(llama_cpp_permute(w, 6), w)
    # row r of head h: interleaved pair position (i, half) -> half-layout position half * 4 + i
    interleaved = torch.arange(8.0)[:, None]  # one head: rows 0..7 hold pairs (0,1), (2,3), ...
    assert unpermute_rotary(interleaved, 1).flatten().tolist() == [0, 2, 4, 6, 1, 3, 5, 7]


def test_unpermute_rotary_rejects_odd_heads():
    with pytest.raises(ValueError, match="cannot be split into 4 heads"):
        unpermute_rotary(torch.zeros(12, 3), 4)


def test_read_gguf_rejects_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no GGUF file"):
        read_gguf(tmp_path / "absent.gguf")


# ----------------------------------------------------------------------------- the real SmolLM2 file


@pytest.fixture(scope="module")
def smollm2() -> GGUFFile:
    from course_lib.data import smollm2_gguf_path

    return read_gguf(smollm2_gguf_path())


def test_q4_1_block_dequantized_by_hand(smollm2):
    """One 32-weight Q4_1 block: float16 scale d, float16 minimum m, 16 bytes of 4-bit codes q; w = d * q + m."""
    from gguf import GGUFReader

    from course_lib.data import smollm2_gguf_path

    raw = next(t for t in GGUFReader(smollm2_gguf_path()).tensors if t.name == "blk.3.ffn_up.weight")
    assert raw.tensor_type.name == "Q4_1"
    block = np.asarray(raw.data)[7, 20 * 5 : 20 * 6]  # row 7, the sixth block of 20 bytes
    d, m = block[0:2].view(np.float16)[0], block[2:4].view(np.float16)[0]
    codes = np.concatenate([block[4:] & 0x0F, block[4:] >> 4])  # low nibbles are weights 0-15, high 16-31
    by_hand = codes.astype(np.float32) * np.float32(d) + np.float32(m)
    np.testing.assert_array_equal(smollm2.tensors["blk.3.ffn_up.weight"][7, 32 * 5 : 32 * 6], by_hand)
    assert smollm2.tensor_types["blk.3.ffn_up.weight"] == "Q4_1"


def test_smollm2_config_from_metadata(smollm2):
    c = config_from_gguf(smollm2)
    assert c == LlamaConfig(norm_eps=c.norm_eps)  # the defaults are SmolLM2-135M's
    assert c.norm_eps == float(smollm2.metadata["llama.attention.layer_norm_rms_epsilon"])
    assert abs(c.norm_eps - 1e-5) < 1e-12


@pytest.mark.slow
def test_smollm2_logits_match_transformers_reading_the_same_file(smollm2):
    """Our loader + model vs transformers' GGUF loader + LlamaForCausalLM: no shared code but ``gguf``'s dequantizer."""
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    from course_lib.data import smollm2_gguf_path

    path = smollm2_gguf_path()
    config = config_from_gguf(smollm2)
    hf = transformers.LlamaForCausalLM(hf_config(config)).eval()
    weights = load_gguf_checkpoint(path, return_tensors=True, model_to_load=hf)["tensors"]
    assert set(weights) | {"lm_head.weight"} == set(hf.state_dict())  # everything but the tied output layer
    hf.load_state_dict(weights, strict=False)
    assert hf.lm_head.weight is hf.model.embed_tokens.weight

    ours = llama_from_gguf(smollm2)
    assert ours.lm_head.weight is ours.wte.weight  # tied again after loading with assign=True
    idx = torch.tensor([[1, 9690, 198, 2683, 359, 253, 5356, 28, 2, 198, 1, 4093, 198, 1780, 314, 3575, 282, 4649, 47]])
    with torch.no_grad():
        got, want = ours(idx)[0], hf(idx).logits
    assert want.abs().max() > 10  # real logits, not zeros
    torch.testing.assert_close(got, want, atol=LOGIT_ATOL, rtol=0)
    assert torch.equal(got.argmax(-1), want.argmax(-1))

    # the chat path: template, tokenizer, greedy decoding with the KV cache, stopped at <|im_end|>
    chat = ChatModel(ours, tokenizer_from_gguf(smollm2), smollm2.metadata["tokenizer.chat_template"], 2)
    prompt = chat.prompt_ids("What is the capital of France?")
    with torch.no_grad():
        want = hf.generate(prompt, max_new_tokens=12, do_sample=False, eos_token_id=2, pad_token_id=2)
    assert torch.equal(ours.generate(prompt, 12, temperature=0, eos_id=2)[:, : want.shape[1]], want)
    assert chat.chat("What is the capital of France?", max_new_tokens=12) == "The capital of France is Paris."


@pytest.fixture(scope="module")
def hf_smollm2_tokenizer():
    """Hugging Face's tokenizer from the same file, with SmolLM2's real pre-split restored.

    transformers' GGUF converter keeps only the byte-level split; SmolLM2's published tokenizer (and
    llama.cpp's "smollm" rule) also splits digits one by one first, which changes e.g. "a  1".
    """
    from tokenizers import pre_tokenizers

    from course_lib.data import smollm2_gguf_path

    path = smollm2_gguf_path()
    hf = transformers.AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    hf.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    return hf


TRICKY_TEXTS = [
    "Hello world 12345",
    "a  1",  # two spaces before a digit stay one piece
    "x   3.14 and   42\n\n\n9",
    "It's don't WE'LL   stop 7'",
    "<|im_start|>user\nHi<|im_end|>\n",
    "中文 テスト ½ ¼ 1️⃣ naïve café 𝔘",
    "   \t ",
]


def test_smollm2_tokenizer_matches_hugging_face(smollm2, hf_smollm2_tokenizer):
    ours = tokenizer_from_gguf(smollm2)
    assert ours.vocab_size == 49152
    for text in TRICKY_TEXTS:
        want = hf_smollm2_tokenizer.backend_tokenizer.encode(text, add_special_tokens=False).ids
        assert ours.encode(text) == want, text
        assert ours.decode(want) == text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.sampled_from(list("ab Z9 0\n\t.,'!é中 ") + ["'s", "  ", "12", "<|im_end|>"]), max_size=20).map("".join)
)
def test_smollm2_tokenizer_matches_hugging_face_on_random_text(smollm2_tokenizer, hf_smollm2_tokenizer, text):
    want = hf_smollm2_tokenizer.backend_tokenizer.encode(text, add_special_tokens=False).ids
    assert smollm2_tokenizer.encode(text) == want


@pytest.fixture(scope="module")
def smollm2_tokenizer(smollm2):
    return tokenizer_from_gguf(smollm2)


def test_smollm2_tokenizer_rejects_a_byte_it_has_no_token_for(smollm2_tokenizer):
    with pytest.raises(ValueError, match="byte 0x04"):
        smollm2_tokenizer.encode("end of transmission \x04")


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "user", "content": "Hi"}],
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": "4"},
            {"role": "user", "content": "And 3+3?"},
        ],
    ],
)
def test_chat_template_renders_like_hugging_face(smollm2, hf_smollm2_tokenizer, messages):
    template = smollm2.metadata["tokenizer.chat_template"]
    for gen in (True, False):
        want = hf_smollm2_tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)
        assert render_chat(template, messages, add_generation_prompt=gen) == want
    assert render_chat(template, messages).endswith("<|im_start|>assistant\n")


def test_render_chat_rejects_malformed_messages(smollm2):
    with pytest.raises(ValueError, match="message 0 must be a dict"):
        render_chat(smollm2.metadata["tokenizer.chat_template"], [{"role": "user", "text": "Hi"}])


CHATML = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"


def test_render_chat_rejects_unknown_roles_and_content_that_is_not_text():
    assert render_chat(CHATML, [{"role": "user", "content": "Hi"}]) == "<|im_start|>user\nHi<|im_end|>\n"
    with pytest.raises(ValueError, match="message 1 has role 'usr'; use one of 'system', 'user', 'assistant'"):
        render_chat(CHATML, [{"role": "system", "content": "Be brief."}, {"role": "usr", "content": "Hi"}])
    with pytest.raises(TypeError, match="message 0's content must be a str, got NoneType"):
        render_chat(CHATML, [{"role": "user", "content": None}])


def test_logit_lens_ends_at_the_models_prediction_and_starts_at_the_embedding():
    ours, _ = tiny_pair(tie=True)
    idx = torch.randint(0, TINY["vocab_size"], (1, 7), generator=torch.Generator().manual_seed(4))
    lens = logit_lens(ours, idx)
    assert lens.shape == (TINY["n_layer"] + 1, 7, TINY["vocab_size"])
    with torch.no_grad():
        final = torch.log_softmax(ours(idx)[0][0], dim=-1)
        first = torch.log_softmax(ours.lm_head(ours.transformer.ln_f(ours.wte(idx)))[0], dim=-1)
    torch.testing.assert_close(lens[-1], final)
    torch.testing.assert_close(lens[0], first)
    assert not torch.allclose(lens[1], lens[0])  # each block changes the reading
    assert not ours.transformer.h[0]._forward_hooks  # the hooks are removed again
    torch.testing.assert_close(logit_lens(ours, idx, last=2), lens[:, -2:])
    with pytest.raises(ValueError, match="last=8 must be between 1 and the sequence length 7"):
        logit_lens(ours, idx, last=8)
    with pytest.raises(ValueError, match="one sequence"):
        logit_lens(ours, idx.repeat(2, 1))
    with pytest.raises(TypeError, match="idx must be a torch.Tensor of token ids, got list"):
        logit_lens(ours, [[1, 2]])


def test_logit_lens_on_gpt_starts_at_its_embedding_with_positions():
    torch.manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=20, block_size=8, n_layer=2, n_head=2, n_embd=16)).eval()
    idx = torch.tensor([[3, 3, 3, 5]])  # the same token at three positions: only the position embedding differs
    lens = logit_lens(gpt, idx)
    with torch.no_grad():
        first = torch.log_softmax(gpt.lm_head(gpt.transformer.ln_f(gpt.wte(idx) + gpt.wpe(torch.arange(4))))[0], -1)
        torch.testing.assert_close(lens[-1], torch.log_softmax(gpt(idx)[0][0], dim=-1))
    torch.testing.assert_close(lens[0], first)
    assert not torch.allclose(lens[0, 0], lens[0, 1])


def test_logit_lens_reads_the_embedding_its_own_forward_used():
    """In training mode the embedding's dropout draws a mask: row 0 must be the one the blocks went on from."""
    torch.manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=20, block_size=8, n_layer=2, n_head=2, n_embd=16, dropout=0.5)).train()
    idx = torch.tensor([[3, 1, 4, 1, 5]])
    seen = []
    gpt.transformer.h[0].register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach().clone()))
    lens = logit_lens(gpt, idx)
    assert len(seen) == 1, "the lens must not run the embedding (and its dropout) a second time"
    with torch.no_grad():
        torch.testing.assert_close(lens[0], torch.log_softmax(gpt.lm_head(gpt.transformer.ln_f(seen[0]))[0], -1))
