"""A Llama-style model on the shared transformer core, and loading a real one from a GGUF file.

Chapter 10 builds RMSNorm, rotary position embeddings, SwiGLU and grouped-query attention inline,
then uses this module to run SmolLM2-135M-Instruct (shipped as a llama.cpp GGUF file) on the
course's own code. The blocks themselves live in ``course_lib.transformer``; this file only says
which switches a Llama uses and how the GGUF file's tensors and tokenizer map onto them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

from course_lib.checks import check_positive_ints, check_positive_real
from course_lib.linear import Linear
from course_lib.tokenizers import GPT2_SPLIT_PATTERN, BPETokenizer
from course_lib.transformer import BlockConfig, DecoderLM, Transformer, check_token_ids

# ----------------------------------------------------------------------------- reading GGUF files


@dataclass(frozen=True)
class GGUFFile:
    """What a GGUF file holds: its metadata (config, tokenizer) and its tensors, dequantized.

    ``stored_bytes`` counts the tensors as the file stores them (4-bit blocks for SmolLM2's matrices),
    so chapter 10 can compare it with the float32 size the model computes in.
    """

    metadata: dict[str, Any]
    tensors: dict[str, np.ndarray]  # GGUF name -> float32 array, shaped (out, in) like nn.Linear.weight
    stored_bytes: int
    tensor_types: dict[str, str]  # GGUF name -> storage type, e.g. "Q4_1", "Q8_0", "F32"


def read_gguf(path: str | os.PathLike) -> GGUFFile:
    """Read a GGUF file's metadata and dequantize every tensor to float32 (SmolLM2: about 5 s).

    ``gguf.quants.dequantize`` turns llama.cpp's blocks (e.g. Q4_1: 32 weights share one float16
    scale and one float16 offset, each weight a 4-bit integer) back into float32 numbers.
    """
    from gguf import GGUFReader, quants  # imported here: only this loader needs the package

    if not os.path.isfile(path):
        raise FileNotFoundError(f"no GGUF file at {os.fspath(path)!r}; pass the path of a .gguf file")
    reader = GGUFReader(path)
    metadata = {name: field.contents() for name, field in reader.fields.items() if not name.startswith("GGUF.")}
    # np.array copies: float32 tensors come back as read-only views of the memory-mapped file
    tensors = {t.name: np.array(quants.dequantize(t.data, t.tensor_type), dtype=np.float32) for t in reader.tensors}
    return GGUFFile(
        metadata=metadata,
        tensors=tensors,
        stored_bytes=int(sum(t.n_bytes for t in reader.tensors)),
        tensor_types={t.name: t.tensor_type.name for t in reader.tensors},
    )


def unpermute_rotary(weight: torch.Tensor, n_head: int) -> torch.Tensor:
    """Undo llama.cpp's reordering of the rows of a query or key projection.

    Rotary embeddings rotate pairs of coordinates inside each head. Hugging Face pairs coordinate i
    with i + hs/2 (the "rotate half" layout this course uses); llama.cpp's kernel pairs neighbours
    (2i, 2i+1), so its converter interleaves the two halves of every head's rows when writing the
    file. Here each head's rows, stored as (hs/2, 2), go back to (2, hs/2). Only the row order of
    the projection changes, so q·k products, and therefore attention, are the same in both layouts.
    """
    out_features = weight.shape[0]
    if out_features % (2 * n_head) != 0:
        raise ValueError(
            f"a rotary projection with {out_features} rows cannot be split into {n_head} heads of even size; "
            "pass n_head = the number of heads this projection produces (key/value heads for the key projection)"
        )
    head_size = out_features // n_head
    return weight.reshape(n_head, head_size // 2, 2, *weight.shape[1:]).transpose(1, 2).reshape(weight.shape)


# ----------------------------------------------------------------------------- the model


@dataclass
class LlamaConfig:
    """The shape of a Llama-style model. The defaults are SmolLM2-135M's, the model chapter 10 runs."""

    vocab_size: int = 49152
    n_layer: int = 30
    n_head: int = 9
    n_kv_head: int = 3  # 3 key/value heads, each shared by 3 query heads: a 3x smaller KV cache
    n_embd: int = 576
    d_ff: int = 1536  # SwiGLU hidden width; about 8/3 * n_embd keeps the 3 matrices near GPT's 2 of width 4
    rope_base: float = 100_000.0  # a large base stretches the slowest rotation over long contexts
    norm_eps: float = 1e-5
    block_size: int = 8192  # positions the model was trained on; RoPE has no table, this is a promise, not a size
    tie_embeddings: bool = True  # the output layer reuses the token embedding matrix

    def __post_init__(self) -> None:
        check_positive_ints(self, ("vocab_size", "n_layer", "n_head", "n_kv_head", "n_embd", "d_ff", "block_size"))
        if not self.norm_eps > 0:
            raise ValueError(f"LlamaConfig.norm_eps must be > 0, got {self.norm_eps!r}")
        # rotary angles are position / rope_base ** (2i / hs): a base <= 0 gives garbage angles, not NaN
        self.rope_base = check_positive_real("LlamaConfig.rope_base", self.rope_base)

    def block_config(self) -> BlockConfig:
        """The shared core's switches for a Llama block: RMSNorm, pre-norm, SwiGLU, no biases, GQA, RoPE."""
        return BlockConfig(
            n_embd=self.n_embd,
            n_head=self.n_head,
            n_kv_head=self.n_kv_head,
            d_ff=self.d_ff,
            norm="rmsnorm",
            norm_eps=self.norm_eps,
            prenorm=True,
            mlp="swiglu",
            bias=False,
            rope_base=self.rope_base,
        )


class Llama(DecoderLM):
    """Token embedding, the shared transformer core with Llama's switches, and an output layer.

    Unlike GPT-2 there is no position embedding: rotary embeddings inside attention carry the
    positions. ``forward`` has GPT's signature, so training and generation code serve both.
    """

    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.transformer = Transformer(config.block_config(), config.n_layer)
        self.lm_head = Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.wte.weight

    def num_params(self) -> int:
        """Parameters counted once each (a tied output layer shares the embedding's)."""
        return sum(p.numel() for p in self.parameters())

    def embed(self, idx: Tensor, offset: int) -> Tensor:
        return self.wte(idx)  # (B, T, C): no position embedding, RoPE rotates q and k inside attention


# ----------------------------------------------------------------------------- GGUF -> Llama


def _metadata(gguf: GGUFFile, key: str) -> Any:
    """A required metadata entry; a file written by llama.cpp's converter has them all."""
    try:
        return gguf.metadata[key]
    except KeyError:
        raise ValueError(
            f"the GGUF metadata has no {key!r}; the file is incomplete or was not written by llama.cpp's converter"
        ) from None


def config_from_gguf(gguf: GGUFFile) -> LlamaConfig:
    """Read the model's shape from GGUF metadata (keys like ``llama.block_count``)."""
    metadata = gguf.metadata
    arch = metadata.get("general.architecture")
    if arch != "llama":
        raise ValueError(f"this loader reads Llama-architecture GGUF files, but the file says {arch!r}")
    n_head = _metadata(gguf, "llama.attention.head_count")
    head_dim = _metadata(gguf, "llama.embedding_length") // n_head
    if metadata.get("llama.rope.dimension_count", head_dim) != head_dim:
        raise ValueError("the file rotates only part of each head (partial RoPE), which this model does not implement")
    return LlamaConfig(
        vocab_size=len(_metadata(gguf, "tokenizer.ggml.tokens")),
        n_layer=_metadata(gguf, "llama.block_count"),
        n_head=n_head,
        n_kv_head=metadata.get("llama.attention.head_count_kv", n_head),
        n_embd=_metadata(gguf, "llama.embedding_length"),
        d_ff=_metadata(gguf, "llama.feed_forward_length"),
        rope_base=float(metadata.get("llama.rope.freq_base", 10_000.0)),
        norm_eps=float(_metadata(gguf, "llama.attention.layer_norm_rms_epsilon")),
        block_size=_metadata(gguf, "llama.context_length"),
        tie_embeddings="output.weight" not in gguf.tensors,  # no separate output matrix: it is tied
    )


def state_dict_from_gguf(gguf: GGUFFile, config: LlamaConfig) -> dict[str, Tensor]:
    """Rename llama.cpp's tensors to this model's parameters, undoing its rotary row order on q and k.

    The core fuses the three attention projections into one ``c_attn`` (rows: q, then k, then v),
    so the file's separate matrices are stacked in that order.
    """
    t = {name: torch.from_numpy(array) for name, array in gguf.tensors.items()}
    sd = {"wte.weight": t["token_embd.weight"], "transformer.ln_f.weight": t["output_norm.weight"]}
    sd["lm_head.weight"] = sd["wte.weight"] if config.tie_embeddings else t["output.weight"]
    for i in range(config.n_layer):
        f, ours = f"blk.{i}.", f"transformer.h.{i}."
        q = unpermute_rotary(t[f + "attn_q.weight"], config.n_head)
        k = unpermute_rotary(t[f + "attn_k.weight"], config.n_kv_head)
        sd[ours + "attn.c_attn.weight"] = torch.cat((q, k, t[f + "attn_v.weight"]), dim=0)
        sd[ours + "attn.c_proj.weight"] = t[f + "attn_output.weight"]
        sd[ours + "ln_1.weight"] = t[f + "attn_norm.weight"]
        sd[ours + "ln_2.weight"] = t[f + "ffn_norm.weight"]
        sd[ours + "mlp.c_gate.weight"] = t[f + "ffn_gate.weight"]
        sd[ours + "mlp.c_fc.weight"] = t[f + "ffn_up.weight"]
        sd[ours + "mlp.c_proj.weight"] = t[f + "ffn_down.weight"]
    return sd


def llama_from_gguf(gguf: GGUFFile) -> Llama:
    """A ``Llama`` holding the file's weights (float32, eval mode). Every parameter must be filled exactly once."""
    config = config_from_gguf(gguf)
    with torch.device("meta"):  # no memory and no random init for weights we overwrite at once
        model = Llama(config)
    model.load_state_dict(state_dict_from_gguf(gguf, config), strict=True, assign=True)
    if config.tie_embeddings:
        model.lm_head.weight = model.wte.weight  # assign=True replaced the shared tensor; tie it again
    return model.eval()


def to_hf_state_dict(model: Llama) -> dict[str, Tensor]:
    """The model's weights under Hugging Face ``LlamaForCausalLM``'s names, q/k/v split again.

    Used to check this implementation against ``transformers`` on identical weights (tests, chapter 10).
    """
    c = model.config
    hs = c.n_embd // c.n_head
    sd = {
        "model.embed_tokens.weight": model.wte.weight,
        "model.norm.weight": model.transformer.ln_f.weight,
        "lm_head.weight": model.lm_head.weight,
    }
    for i, block in enumerate(model.transformer.h):
        p = f"model.layers.{i}."
        q, k, v = block.attn.c_attn.weight.split([c.n_head * hs, c.n_kv_head * hs, c.n_kv_head * hs])
        sd |= {
            p + "self_attn.q_proj.weight": q,
            p + "self_attn.k_proj.weight": k,
            p + "self_attn.v_proj.weight": v,
            p + "self_attn.o_proj.weight": block.attn.c_proj.weight,
            p + "input_layernorm.weight": block.ln_1.weight,
            p + "post_attention_layernorm.weight": block.ln_2.weight,
            p + "mlp.gate_proj.weight": block.mlp.c_gate.weight,
            p + "mlp.up_proj.weight": block.mlp.c_fc.weight,
            p + "mlp.down_proj.weight": block.mlp.c_proj.weight,
        }
    return sd


# ----------------------------------------------------------------------------- tokenizer and chat template

# SmolLM2 splits every digit into its own piece before GPT-2's rule runs on the pieces between them.
# As one regex: digits alone (no leading space), and a run of spaces before a digit kept whole, as it
# would be at the end of a piece. llama.cpp calls this pre-tokenizer "smollm".
SMOLLM_SPLIT_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+|\s+(?=\p{N})|\s+(?!\S)|\s+"""
SPLIT_PATTERNS = {"gpt2": GPT2_SPLIT_PATTERN, "smollm": SMOLLM_SPLIT_PATTERN}
_CONTROL, _USER_DEFINED = 3, 4  # llama.cpp's token types for special tokens
CHAT_ROLES = ("system", "user", "assistant")  # the roles chat models are trained with


def tokenizer_from_gguf(gguf: GGUFFile) -> BPETokenizer:
    """The byte-level BPE tokenizer stored in the file's metadata: tokens, merges, pre-split rule, specials."""
    meta = gguf.metadata
    if meta.get("tokenizer.ggml.model") != "gpt2":
        raise ValueError(
            f"only byte-level BPE ('gpt2') tokenizers are supported, the file has {meta.get('tokenizer.ggml.model')!r}"
        )
    pre = meta.get("tokenizer.ggml.pre", "gpt2")
    if pre not in SPLIT_PATTERNS:
        raise ValueError(f"unknown pre-tokenizer {pre!r}; known: {', '.join(SPLIT_PATTERNS)}")
    tokens, types = _metadata(gguf, "tokenizer.ggml.tokens"), _metadata(gguf, "tokenizer.ggml.token_type")
    special = {
        tok: i for i, (tok, kind) in enumerate(zip(tokens, types, strict=True)) if kind in (_CONTROL, _USER_DEFINED)
    }
    return BPETokenizer.from_merges(tokens, _metadata(gguf, "tokenizer.ggml.merges"), SPLIT_PATTERNS[pre], special)


def render_chat(template: str, messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
    """Fill a model's Jinja chat template with ``messages`` ({"role", "content"} dicts), as its trainers did.

    An instruction-tuned model has only ever seen conversations in this exact format (SmolLM2: ChatML,
    ``<|im_start|>role\\ncontent<|im_end|>``); the trailing ``<|im_start|>assistant\\n`` asks for a reply.
    The template runs in Jinja's sandbox because it comes from a downloaded file.
    """
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    for i, m in enumerate(messages):
        if not isinstance(m, dict) or set(m) != {"role", "content"}:
            raise ValueError(f"message {i} must be a dict with exactly the keys 'role' and 'content', got {m!r}")
        if m["role"] not in CHAT_ROLES:  # a template renders any role, so a typo would reach the model unnoticed
            raise ValueError(f"message {i} has role {m['role']!r}; use one of {', '.join(map(repr, CHAT_ROLES))}")
        if not isinstance(m["content"], str):
            raise TypeError(f"message {i}'s content must be a str, got {type(m['content']).__name__}")
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(template).render(messages=messages, add_generation_prompt=add_generation_prompt)


@dataclass
class ChatModel:
    """A model with its tokenizer and chat template: everything needed to ask it a question."""

    model: Llama
    tokenizer: BPETokenizer
    chat_template: str
    eos_id: int  # the token that ends the assistant's turn (SmolLM2: <|im_end|>)

    @classmethod
    def from_gguf(cls, gguf: GGUFFile) -> ChatModel:
        return cls(
            llama_from_gguf(gguf),
            tokenizer_from_gguf(gguf),
            _metadata(gguf, "tokenizer.chat_template"),
            _metadata(gguf, "tokenizer.ggml.eos_token_id"),
        )

    def prompt_ids(self, messages: list[dict[str, str]] | str) -> Tensor:
        """Token ids (1, T) of a conversation (a string is one user message), ready for the reply."""
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        text = render_chat(self.chat_template, messages, add_generation_prompt=True)
        return torch.tensor([self.tokenizer.encode(text)], device=self.model.wte.weight.device)

    def chat(self, messages: list[dict[str, str]] | str, max_new_tokens: int = 64, temperature: float = 0.0) -> str:
        """The model's reply, greedy by default (temperature 0), stopped at the end-of-turn token."""
        idx = self.prompt_ids(messages)
        out = self.model.generate(idx, max_new_tokens, temperature=temperature, eos_id=self.eos_id)[0, idx.shape[1] :]
        reply = out.tolist()
        if self.eos_id in reply:
            reply = reply[: reply.index(self.eos_id)]
        return self.tokenizer.decode(reply)


# ----------------------------------------------------------------------------- looking inside


@torch.no_grad()
def logit_lens(model: DecoderLM, idx: Tensor, last: int | None = None) -> Tensor:
    """Next-token log-probabilities read off the residual stream after the embedding and after each block.

    The "logit lens" (nostalgebraist, 2020) applies the model's own final norm and output layer to an
    intermediate state, as if the remaining blocks were skipped. Returns (n_layer + 1, T, vocab_size)
    for one sequence ``idx`` (1, T); the last entry is the model's real prediction. The output layer
    dominates the cost (vocab_size x n_embd per position and layer), so ``last=n`` reads only the
    last n positions. Any decoder of the course works (GPT too): row 0 is what its ``embed`` gave block 0 in this
    very forward pass, so in training mode it carries the same dropout mask as the rows after it.
    """
    check_token_ids(idx, model.config.vocab_size, model.config.block_size)
    if idx.shape[0] != 1:
        raise ValueError(f"logit_lens takes one sequence, shape (1, T), got {tuple(idx.shape)}; use idx[:1]")
    if last is not None and not 1 <= last <= idx.shape[1]:
        raise ValueError(f"last={last!r} must be between 1 and the sequence length {idx.shape[1]}, or None for all")
    states: list[Tensor] = []  # (1, T, C) each: block 0's input (GPT's includes its positions), then every output
    blocks = model.transformer.h
    hooks = [blocks[0].register_forward_pre_hook(lambda _m, args: states.append(args[0]))]
    hooks += [block.register_forward_hook(lambda _m, _inp, out: states.append(out)) for block in blocks]
    try:
        model(idx)
    finally:
        for h in hooks:
            h.remove()
    stacked = torch.cat(states)[:, -(last or idx.shape[1]) :]  # (n_layer + 1, T or last, C)
    return torch.log_softmax(model.lm_head(model.transformer.ln_f(stacked)).float(), dim=-1)
