"""BERT: an encoder-only transformer that reads the whole sentence at once (chapters 07 and 08).

The same core as GPT (``course_lib.transformer``), switched to post-LN, exact GELU and bidirectional
attention; what is BERT's own are the embeddings (word + position + sentence A/B), the padding mask
and the heads. Config fields carry Hugging Face's names, and every class loads the matching
``transformers`` model (``from_hf``) or a checkpoint folder with ``config.json`` and
``model.safetensors`` (``from_pretrained``, no ``transformers`` needed), such as all-MiniLM-L6-v2.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from course_lib.checks import check_positive_ints, check_probability
from course_lib.transformer import BlockConfig, Transformer, check_attention_mask, check_labels, check_token_ids

HF_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh"}
# What from_pretrained may change in a checkpoint's config: the head's size and training-time settings. Every
# other field shapes the stored weights or how they compute, so a checkpoint fixes it.
CHANGEABLE = (
    "num_labels",
    "classifier_dropout",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "initializer_range",
)


@dataclass
class BertConfig:
    """BERT's hyper-parameters under Hugging Face's names; the defaults are bert-base-uncased."""

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"  # exact GELU; "gelu_new" is the tanh approximation
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2  # sentence A / sentence B
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    num_labels: int = 2  # for the classification heads
    classifier_dropout: float | None = None  # None: hidden_dropout_prob

    def __post_init__(self) -> None:
        check_positive_ints(self, ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads"))
        check_positive_ints(self, ("intermediate_size", "max_position_embeddings", "type_vocab_size", "num_labels"))
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            check_probability(self, name)
        if self.classifier_dropout is not None:
            check_probability(self, "classifier_dropout")
        if self.pad_token_id is not None and not 0 <= self.pad_token_id < self.vocab_size:
            raise ValueError(f"BertConfig.pad_token_id={self.pad_token_id!r} must be an id in [0, {self.vocab_size})")
        if not self.layer_norm_eps > 0:
            raise ValueError(f"BertConfig.layer_norm_eps must be > 0, got {self.layer_norm_eps!r}")
        if self.hidden_act not in HF_ACTIVATIONS:
            raise ValueError(f"BertConfig.hidden_act={self.hidden_act!r} is not one of {sorted(HF_ACTIVATIONS)}")
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f"hidden_size={self.hidden_size} is not divisible by num_attention_heads={self.num_attention_heads}; "
                f"each head gets hidden_size // num_attention_heads dimensions, so choose a divisor"
            )

    def block_config(self) -> BlockConfig:
        return BlockConfig(
            n_embd=self.hidden_size,
            n_head=self.num_attention_heads,
            d_ff=self.intermediate_size,
            norm="layernorm",
            norm_eps=self.layer_norm_eps,
            prenorm=False,
            mlp=HF_ACTIVATIONS[self.hidden_act],
            bias=True,
            dropout=self.hidden_dropout_prob,
            attn_dropout=self.attention_probs_dropout_prob,
        )

    @classmethod
    def from_dict(cls, d: dict) -> BertConfig:
        """Read a Hugging Face config (``config.to_dict()`` or a ``config.json``), refusing what BERT here lacks."""
        problems = []
        if d.get("model_type", "bert") != "bert":
            problems.append(f"model_type={d['model_type']!r} (expected 'bert')")
        if d.get("position_embedding_type", "absolute") != "absolute":
            problems.append(f"position_embedding_type={d['position_embedding_type']!r} (only 'absolute')")
        if d.get("is_decoder", False) or d.get("add_cross_attention", False):
            problems.append("is_decoder/add_cross_attention=True (only the encoder is implemented)")
        if problems:
            raise ValueError(f"this config describes a model BertModel cannot load: {'; '.join(problems)}")
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in known}
        if "num_labels" not in d and d.get("id2label"):
            kwargs["num_labels"] = len(d["id2label"])
        return cls(**kwargs)


class BertOutput(NamedTuple):
    last_hidden_state: Tensor  # (B, T, hidden_size): one vector per token
    pooler_output: Tensor | None  # (B, hidden_size): tanh(dense([CLS] vector)), the sentence summary


class BertEmbeddings(nn.Module):
    """word + position + token type (sentence A or B), then LayerNorm and dropout, named as in BERT's checkpoints."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: Tensor, token_type_ids: Tensor) -> Tensor:
        pos = torch.arange(input_ids.shape[1], device=input_ids.device)  # (T,)
        x = self.word_embeddings(input_ids) + self.position_embeddings(pos) + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(x))  # (B, T, C)


BACKBONE = ("embeddings", "encoder", "pooler")
_LAYER_NAMES = {  # inside encoder.layer.N (Hugging Face) -> inside encoder.h.N (the shared core)
    "attention.output.dense": "attn.c_proj",
    "attention.output.LayerNorm": "ln_1",
    "intermediate.dense": "mlp.c_fc",
    "output.dense": "mlp.c_proj",
    "output.LayerNorm": "ln_2",
}
_HEAD_NAMES = {
    "pooler.dense": "pooler",
    "cls.predictions.transform.dense": "transform",
    "cls.predictions.transform.LayerNorm": "transform_norm",
    "cls.predictions.decoder": "decoder",
    "cls.predictions": "decoder",  # the output bias, stored once more outside the decoder
}


def convert_hf_state_dict(sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """Hugging Face BERT weights under this module's names: backbone keys without the ``bert.`` prefix,
    the three attention projections of a layer fused into ``c_attn`` (q, k, v stacked, as MultiHeadAttention
    splits them), and buffers dropped. Old checkpoints' LayerNorm ``gamma``/``beta`` are understood too.
    """
    out: dict[str, Tensor] = {}
    qkv: dict[tuple[int, str, str], Tensor] = {}
    for key, value in sd.items():
        key = key.removeprefix("bert.").replace("LayerNorm.gamma", "LayerNorm.weight")
        key = key.replace("LayerNorm.beta", "LayerNorm.bias")
        if key.endswith("position_ids"):
            continue
        module, _, param = key.rpartition(".")
        layer = re.fullmatch(r"encoder\.layer\.(\d+)\.(.+)", module)
        if layer and layer[2].startswith("attention.self."):
            qkv[(int(layer[1]), layer[2].rsplit(".", 1)[1], param)] = value
            continue
        if layer and layer[2] in _LAYER_NAMES:
            module = f"encoder.h.{layer[1]}.{_LAYER_NAMES[layer[2]]}"
        elif module in _HEAD_NAMES:
            module = _HEAD_NAMES[module]
        out[f"{module}.{param}"] = value
    for (i, name, param), value in qkv.items():
        if name == "query":
            parts = [value, qkv[(i, "key", param)], qkv[(i, "value", param)]]
            out[f"encoder.h.{i}.attn.c_attn.{param}"] = torch.cat(parts, dim=0)
    return out


class _BertBase(nn.Module):
    """What every BERT class shares: weight initialisation and loading from Hugging Face."""

    hf_class = ""  # the transformers class this one mirrors
    # Weights a checkpoint may lack: a task head that fine-tuning trains from scratch. A pretrained encoder
    # has no classifier for our labels (and one pretrained without next-sentence prediction has no pooler),
    # so these keep their fresh initialisation; any other missing weight is an error.
    new_weights: tuple[str, ...] = ()

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.config = config

    def _init_weights(self, module: nn.Module) -> None:
        """BERT's initialisation: normal(0, initializer_range) weights, zero biases, zero padding embedding."""
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=self.config.initializer_range)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
        if isinstance(module, nn.Embedding) and module.padding_idx is not None:
            nn.init.zeros_(module.weight[module.padding_idx])

    @classmethod
    def _build(cls, config: BertConfig, state: dict[str, Tensor]) -> _BertBase:
        return cls(config)

    @classmethod
    def _load(cls, config: BertConfig, hf_state: dict[str, Tensor]) -> _BertBase:
        state = convert_hf_state_dict(hf_state)
        model = cls._build(config, state)
        prefix = "" if isinstance(model, BertModel) else "bert."
        state = {(prefix + k if k.split(".")[0] in BACKBONE else k): v for k, v in state.items()}
        if "decoder.weight" in model.state_dict() and "decoder.weight" not in state:  # stored once, tied
            state["decoder.weight"] = state["bert.embeddings.word_embeddings.weight"]
        fresh = model.state_dict()
        missing = [k for k in fresh if k not in state and not k.startswith(cls.new_weights)]
        if missing:
            raise ValueError(f"the checkpoint lacks weights {cls.__name__} needs: {', '.join(missing[:5])}")
        for k in [k for k in fresh if k in state and state[k].shape != fresh[k].shape]:
            if not k.startswith(cls.new_weights):
                raise ValueError(
                    f"the checkpoint's {k} has shape {tuple(state[k].shape)} but the config needs "
                    f"{tuple(fresh[k].shape)}; load it with the config it was saved with"
                )
            del state[k]  # a head for another num_labels: a new head, as the changed config asks
        model.newly_initialized = tuple(k for k in fresh if k not in state)  # the new head, to be trained
        model.load_state_dict({k: state.get(k, fresh[k]) for k in fresh}, strict=True)
        return model

    @classmethod
    def from_hf(cls, model: nn.Module) -> _BertBase:
        """Build this class with the config and weights of the matching Hugging Face model."""
        if isinstance(model, _BertBase):
            raise TypeError(
                f"{cls.__name__}.from_hf takes a transformers model (transformers.{cls.hf_class}), got course_lib's "
                f"own {type(model).__name__}, which needs no conversion; use it as it is, or copy.deepcopy(model)"
            )
        if type(model).__name__ != cls.hf_class:
            raise TypeError(
                f"{cls.__name__}.from_hf needs a transformers {cls.hf_class}, got {type(model).__name__}; "
                f"load the matching class, e.g. transformers.{cls.hf_class}.from_pretrained(...)"
            )
        config = BertConfig.from_dict(model.config.to_dict())
        ours = cls._load(config, model.state_dict())
        return ours.to(next(model.parameters()))  # same device and dtype as the source

    @classmethod
    def from_pretrained(cls, folder: str | Path, **config_changes) -> _BertBase:
        """Load a Hugging Face checkpoint folder (``config.json`` + ``model.safetensors``) without ``transformers``.

        ``config_changes`` override fields of the stored config, e.g. ``num_labels=12`` for a new tagging
        head; only the fields in ``CHANGEABLE`` can change, as the others are fixed by the stored weights. A head
        the checkpoint lacks or holds for another ``num_labels`` (``new_weights``: the classifier, and the pooler
        under a sequence classifier) is freshly initialised, as in Hugging Face; ``model.newly_initialized``
        names those weights. Half-precision weights are cast to the model's float32.
        """
        from safetensors.torch import load_file

        folder = Path(folder)
        for name in ("config.json", "model.safetensors"):
            if not (folder / name).is_file():
                raise FileNotFoundError(
                    f"{folder / name} not found; from_pretrained reads a Hugging Face checkpoint folder"
                )
        unknown = sorted(set(config_changes) - {f.name for f in fields(BertConfig)})
        if unknown:
            raise TypeError(f"from_pretrained got {unknown}, which are not BertConfig fields")
        stored = BertConfig.from_dict(json.loads((folder / "config.json").read_text()))
        fixed = [k for k, v in config_changes.items() if k not in CHANGEABLE and v != getattr(stored, k)]
        if fixed:
            raise ValueError(
                f"{fixed[0]} is fixed by the checkpoint ({getattr(stored, fixed[0])!r}): it shapes the stored weights "
                f"or how they compute; only {', '.join(CHANGEABLE)} can change"
            )
        config = replace(stored, **config_changes)
        return cls._load(config, load_file(folder / "model.safetensors"))

    def _check(self, input_ids: Tensor, attention_mask: Tensor | None, token_type_ids: Tensor | None) -> None:
        c = self.config
        check_token_ids(input_ids, c.vocab_size, c.max_position_embeddings, name="input_ids")
        check_attention_mask(attention_mask, tuple(input_ids.shape))
        if token_type_ids is not None:
            if isinstance(token_type_ids, Tensor) and token_type_ids.shape != input_ids.shape:
                raise ValueError(
                    f"token_type_ids has shape {tuple(token_type_ids.shape)} but input_ids has "
                    f"{tuple(input_ids.shape)}; give one sentence id (0 or 1) per token"
                )
            check_token_ids(token_type_ids, c.type_vocab_size, c.max_position_embeddings, name="token_type_ids")


class BertModel(_BertBase):
    """Embeddings, a post-LN encoder with bidirectional attention, and (optionally) the pooler."""

    hf_class = "BertModel"

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True) -> None:
        super().__init__(config)
        self.embeddings = BertEmbeddings(config)
        self.encoder = Transformer(config.block_config(), config.num_hidden_layers)
        self.pooler = nn.Linear(config.hidden_size, config.hidden_size) if add_pooling_layer else None
        self.apply(self._init_weights)

    @classmethod
    def _build(cls, config: BertConfig, state: dict[str, Tensor]) -> BertModel:
        return cls(config, add_pooling_layer="pooler.weight" in state)

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor | None = None, token_type_ids: Tensor | None = None
    ) -> BertOutput:
        """``input_ids`` (B, T); ``attention_mask`` (B, T) 1 = token, 0 = padding; ``token_type_ids`` (B, T) 0/1."""
        self._check(input_ids, attention_mask, token_type_ids)
        if attention_mask is not None:
            attention_mask = attention_mask.bool()  # its values were checked above; a bool mask is not read again
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        x = self.embeddings(input_ids, token_type_ids)  # (B, T, C)
        x = self.encoder(x, attention_mask=attention_mask)  # (B, T, C): every token sees every non-pad token
        pooled = torch.tanh(self.pooler(x[:, 0])) if self.pooler is not None else None  # (B, C) from [CLS]
        return BertOutput(x, pooled)


class BertForMaskedLM(_BertBase):
    """BERT's pre-training task: predict the tokens hidden behind [MASK] from both sides."""

    hf_class = "BertForMaskedLM"

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.transform = nn.Linear(config.hidden_size, config.hidden_size)
        self.approximate = "tanh" if HF_ACTIVATIONS[config.hidden_act] == "gelu_tanh" else "none"
        self.transform_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)
        self.apply(self._init_weights)
        self.decoder.weight = self.bert.embeddings.word_embeddings.weight  # tied, as in GPT

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        labels: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Logits (B, T, vocab_size) and, with ``labels`` (B, T; -100 where nothing was masked), the loss."""
        if labels is not None:
            check_labels(labels, tuple(input_ids.shape), self.config.vocab_size)
        x = self.bert(input_ids, attention_mask, token_type_ids).last_hidden_state
        x = self.transform_norm(F.gelu(self.transform(x), approximate=self.approximate))
        logits = self.decoder(x)  # (B, T, vocab_size)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100)
        return logits, loss


def _classifier_head(config: BertConfig) -> tuple[nn.Dropout, nn.Linear]:
    """Dropout, then a linear layer to ``num_labels``: the head both classifiers put on the encoder.

    ``classifier_dropout`` falls back to the encoder's dropout, as in Hugging Face's config.
    """
    p = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
    return nn.Dropout(p), nn.Linear(config.hidden_size, config.num_labels)


class BertForSequenceClassification(_BertBase):
    """A linear classifier on the pooled [CLS] vector: sentiment, entailment, or a score (``num_labels=1``)."""

    hf_class = "BertForSequenceClassification"
    new_weights = ("classifier.", "bert.pooler.")

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.bert = BertModel(config)
        self.dropout, self.classifier = _classifier_head(config)
        self.apply(self._init_weights)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        labels: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Logits (B, num_labels) and, with ``labels``, the loss, chosen as Hugging Face does:
        one label is regression (MSE), integer labels are classes (cross-entropy), float labels of
        shape (B, num_labels) are independent yes/no targets (binary cross-entropy).
        """
        if labels is not None:
            self._check_labels(labels, len(input_ids))
        pooled = self.bert(input_ids, attention_mask, token_type_ids).pooler_output
        logits = self.classifier(self.dropout(pooled))  # (B, num_labels)
        loss = None
        if labels is not None and self.config.num_labels == 1:
            loss = F.mse_loss(logits.squeeze(-1).float(), labels.float())
        elif labels is not None and not labels.is_floating_point():
            loss = F.cross_entropy(logits.float(), labels)
        elif labels is not None:
            loss = F.binary_cross_entropy_with_logits(logits.float(), labels.float())
        return logits, loss

    def _check_labels(self, labels: Tensor, batch: int) -> None:
        """(B,) scores for regression, (B,) class ids, or (B, num_labels) 0/1 floats; anything else would broadcast."""
        k = self.config.num_labels
        if not isinstance(labels, Tensor):
            raise TypeError(f"labels must be a torch.Tensor, got {type(labels).__name__}; use torch.tensor(labels)")
        if k > 1 and not labels.is_floating_point():
            check_labels(labels, (batch,), k)
            return
        shape = (batch,) if k == 1 else (batch, k)
        if tuple(labels.shape) != shape:
            kind = "one score per example" if k == 1 else "one 0/1 float per class and example, or (B,) class ids"
            raise ValueError(f"labels has shape {tuple(labels.shape)}; with num_labels={k} it must be {shape}: {kind}")


class BertForTokenClassification(_BertBase):
    """A linear classifier on every token's vector: part-of-speech tags, named entities."""

    hf_class = "BertForTokenClassification"
    new_weights = ("classifier.",)

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.dropout, self.classifier = _classifier_head(config)
        self.apply(self._init_weights)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        labels: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Logits (B, T, num_labels) and, with ``labels`` (B, T; -100 on padding and sub-word pieces), the loss."""
        if labels is not None:
            check_labels(labels, tuple(input_ids.shape), self.config.num_labels)
        x = self.bert(input_ids, attention_mask, token_type_ids).last_hidden_state
        logits = self.classifier(self.dropout(x))  # (B, T, num_labels)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100)
        return logits, loss
