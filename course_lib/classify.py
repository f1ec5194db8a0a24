"""Sequence classification with a GPT: the last real token's vector and a new linear head (chapter 06).

A GPT's attention is causal, so only the last token of a sentence has seen every word of it; its final
hidden state (after the last LayerNorm, where the language-model head would read it) is the sentence's
summary. A new ``nn.Linear`` maps it to one score per class. Batches are padded on the right, and with
causal attention a real token never sees the padding after it, so no attention mask is needed: we only
have to pick, in each row, the position of the last real token. This is what Hugging Face's
``GPT2ForSequenceClassification`` does too (without a bias in its head).

``train_classifier`` fine-tunes any such classifier on padded batches with the optimizer and schedule of
``course_lib.train``, and ``predict_classes`` runs it over a whole split.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_lib.attention import check_attention_mask
from course_lib.data import check_class_ids, check_token_sequences, classification_batches
from course_lib.device import get_device
from course_lib.gpt import GPT
from course_lib.train import TrainConfig, configure_optimizer, lr_at
from course_lib.transformer import check_labels, check_token_ids, out_of_range


def last_token_index(attention_mask: Tensor) -> Tensor:
    """(B, T) mask of 1s then 0s -> (B,) position of each row's last real token."""
    if attention_mask.dim() != 2:
        raise ValueError(f"attention_mask must be (batch, time), got shape {tuple(attention_mask.shape)}")
    lengths = attention_mask.long().sum(dim=1)  # (B,)
    if (lengths == 0).any():
        raise ValueError("a row of attention_mask is all padding; every sequence needs at least one real token")
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)  # (T,)
    if not torch.equal(attention_mask.long(), (positions < lengths[:, None]).long()):
        raise ValueError(
            "attention_mask must be 1s followed by 0s in every row (padding on the right); a causal GPT reads "
            "left to right, so left padding would put pad tokens before the words"
        )
    return lengths - 1


class GPTForSequenceClassification(nn.Module):
    """``gpt`` (pretrained or not) plus ``head``: a linear map from the last real token's vector to classes."""

    def __init__(self, gpt: GPT, num_labels: int = 2) -> None:
        super().__init__()
        if isinstance(num_labels, bool) or not isinstance(num_labels, int) or num_labels < 2:
            raise ValueError(f"num_labels must be an int >= 2, got {num_labels!r}")
        self.gpt = gpt
        self.head = nn.Linear(gpt.config.n_embd, num_labels)
        nn.init.normal_(self.head.weight, std=0.02)  # small scores at first: the loss starts near ln(num_labels)
        nn.init.zeros_(self.head.bias)

    @property
    def num_labels(self) -> int:
        return self.head.out_features

    def features(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """(B, T) ids -> (B, C): the final hidden state of each row's last real token."""
        gpt = self.gpt
        check_token_ids(input_ids, gpt.config.vocab_size, gpt.config.block_size, name="input_ids")
        check_attention_mask(attention_mask, tuple(input_ids.shape))  # a (B, T) tensor of 1s and 0s, or None
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        last = last_token_index(attention_mask)  # (B,)
        pos = torch.arange(input_ids.shape[1], device=input_ids.device)  # (T,)
        x = gpt.drop(gpt.wte(input_ids) + gpt.wpe(pos))  # (B, T, C)
        x = gpt.transformer(x, is_causal=True)  # (B, T, C), after the final LayerNorm
        return x[torch.arange(len(x), device=x.device), last]  # (B, C)

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor | None = None, labels: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """Class scores (B, num_labels) and, with ``labels`` (B,), the mean cross-entropy."""
        if labels is not None:
            check_labels(labels, (len(input_ids),), self.num_labels)
        logits = self.head(self.features(input_ids, attention_mask))  # (B, num_labels)
        loss = F.cross_entropy(logits, labels) if labels is not None else None
        return logits, loss


@dataclass
class ClassifierHistory:
    """What ``train_classifier`` measured: the training loss per step and validation accuracy at evaluations."""

    steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    seconds: float = 0.0  # wall time of training, evaluations excluded


@torch.no_grad()
def predict_classes(
    model: nn.Module, sequences: Sequence[Sequence[int]], batch_size: int = 128, pad_id: int = 0
) -> tuple[Tensor, Tensor]:
    """(N,) predicted class and (N, K) class probabilities of every sequence, in the input order."""
    batches = classification_batches(sequences, [0] * len(sequences), batch_size, pad_id, shuffle=False)
    _check_sequences_fit(model, sequences, "")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device  # the batches go where the model is (a GPU in a big run)
    probs = [None] * len(sequences)
    for batch in batches:
        logits, _ = model(batch.input_ids.to(device), batch.attention_mask.to(device))
        for i, p in zip(batch.index.tolist(), logits.float().softmax(dim=-1).cpu(), strict=True):
            probs[i] = p
    model.train(was_training)
    stacked = torch.stack(probs)  # (N, K)
    return stacked.argmax(dim=1), stacked


def train_classifier(
    model: nn.Module,
    sequences: Sequence[Sequence[int]],
    labels: Sequence[int],
    config: TrainConfig,
    val: tuple[Sequence[Sequence[int]], Sequence[int]] | None = None,
    pad_id: int = 0,
) -> ClassifierHistory:
    """Fine-tune ``model`` (``model(ids, mask, labels=labels) -> (logits, loss)``) for ``config.max_steps`` steps.

    Uses the pieces of the language-model loop (``course_lib.train``): AdamW on the parameters that require
    gradients, decay on matrices only, warmup then cosine decay, gradient clipping. Batches of
    ``config.batch_size`` come from ``classification_batches`` epoch after epoch, shuffled with
    ``config.seed``, so two runs with the same seed see the same sentences in the same order. With ``val``,
    accuracy on it is measured every ``config.eval_interval`` steps and at the end. ``config.device`` None
    means ``get_device()``, as in ``train``. Training is plain fp32 (precision "auto" or "fp32"), eager, one
    batch per step, on the whole ``val`` set, with no checkpoints: a config that asks for more is refused.
    """
    _check_supported(config)
    _check_classification_data(model, sequences, labels, "")
    if val is not None:
        if not isinstance(val, (tuple, list)) or len(val) != 2:
            got = f"{len(val)} items" if isinstance(val, (tuple, list)) else f"a {type(val).__name__}"
            raise TypeError(f"val must be a pair (sequences, labels), got {got}")
        _check_classification_data(model, *val, "val ")
    device = get_device(None if config.device is None else str(config.device))
    model.to(device).train()
    optimizer = configure_optimizer(model, config, device)
    generator = torch.Generator().manual_seed(config.seed)
    history, batches, step, start = ClassifierHistory(), iter(()), 0, time.perf_counter()

    def evaluate() -> None:
        nonlocal start
        paused = time.perf_counter()
        predicted, _ = predict_classes(model, val[0], pad_id=pad_id)
        history.eval_steps.append(step)
        history.val_accuracy.append((predicted == torch.as_tensor(val[1])).float().mean().item())
        start += time.perf_counter() - paused  # evaluation time is not training time

    while step < config.max_steps:
        if val is not None and config.eval_interval and step % config.eval_interval == 0:
            evaluate()
        batch = next(batches, None)
        if batch is None:  # a new epoch, in a new shuffled order
            batches = classification_batches(sequences, labels, config.batch_size, pad_id, generator=generator)
            batch = next(batches)
        _, loss = model(batch.input_ids.to(device), batch.attention_mask.to(device), labels=batch.labels.to(device))
        history.steps.append(step)
        history.train_loss.append(loss.item())
        if not math.isfinite(history.train_loss[-1]):  # before the step: NaN weights would only hide where it broke
            raise FloatingPointError(
                f"training loss became {history.train_loss[-1]} at step {step}: the run diverged; lower "
                "learning_rate" + ("" if config.grad_clip else " or turn on grad_clip (1.0 is usual)")
            )
        loss.backward()
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], config.grad_clip)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, config)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
    if val is not None and (not history.eval_steps or history.eval_steps[-1] != step):
        evaluate()
    history.seconds = time.perf_counter() - start
    return history


# TrainConfig fields this loop does not implement, with what to do instead; each must keep its default
_NO_CHECKPOINTS = "it writes no checkpoints; save the model yourself with course_lib.checkpoint.save_checkpoint"
_UNSUPPORTED = {
    "grad_accum_steps": "leave it at 1 (a smaller batch_size fits in less memory)",
    "eval_batches": "it always evaluates on the whole val set; leave eval_batches at its default",
    "out_dir": _NO_CHECKPOINTS,
    "checkpoint_interval": _NO_CHECKPOINTS,
}


def _check_supported(config: TrainConfig) -> None:
    """Refuse a TrainConfig field set to something this loop would silently ignore."""
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a course_lib.train.TrainConfig, got {type(config).__name__}")
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    for name, fix in _UNSUPPORTED.items():
        if getattr(config, name) != defaults[name]:
            raise ValueError(f"train_classifier does not support {name} (got {getattr(config, name)!r}); {fix}")
    if config.precision not in ("auto", "fp32"):
        raise ValueError(
            f"train_classifier does not support precision={config.precision!r}; it trains in fp32, "
            "so use precision='fp32' (or 'auto')"
        )
    if config.compile:
        raise ValueError("train_classifier does not support compile=True; it runs eagerly, so leave compile at None")


def _check_classification_data(model: nn.Module, sequences: Sequence, labels: Sequence[int], split: str) -> None:
    """Pairs up, every sequence fits the model and every label is a class of it, before the first step."""
    if len(sequences) == 0 or len(sequences) != len(labels):
        raise ValueError(
            f"{len(sequences)} {split}sequences and {len(labels)} {split}labels; give at least one, paired one to one"
        )
    check_class_ids(labels, name=f"{split}labels")
    check_token_sequences(sequences, name=f"{split}sequence")
    _check_sequences_fit(model, sequences, split)
    num_labels = getattr(model, "num_labels", None) or getattr(getattr(model, "config", None), "num_labels", None)
    if num_labels and num_labels > 1:
        check_labels(torch.as_tensor(labels, dtype=torch.long), (len(labels),), num_labels, name=f"{split}labels")


def _check_sequences_fit(model: nn.Module, sequences: Sequence, split: str) -> None:
    """Every sequence (int ids, already checked) is in the model's vocabulary and fits its positions.

    The limits come from the model's config: a GPT classifier's ``gpt.config`` (``vocab_size``, ``block_size``)
    or a BERT's ``config`` (``vocab_size``, ``max_position_embeddings``); a model without them is not checked.
    """
    config = getattr(getattr(model, "gpt", model), "config", None)
    vocab_size = getattr(config, "vocab_size", None)
    positions = getattr(config, "block_size", None) or getattr(config, "max_position_embeddings", None)
    if positions is not None:
        lengths = [len(seq) for seq in sequences]
        if max(lengths) > positions:
            i = next(i for i, n in enumerate(lengths) if n > positions)
            raise ValueError(
                f"{split}sequence {i} has {lengths[i]} tokens but the model has {positions} positions; "
                f"truncate the sentences to at most {positions} tokens, e.g. ids[:{positions}]"
            )
    if vocab_size is not None:
        bad = out_of_range(torch.cat([torch.as_tensor(seq, dtype=torch.long) for seq in sequences]), vocab_size)
        if bad is not None:
            i = next(i for i, seq in enumerate(sequences) if bad in torch.as_tensor(seq).tolist())
            raise ValueError(
                f"{split}sequence {i} holds token id {bad}, outside the model's vocabulary [0, {vocab_size}); "
                "encode the texts with this model's tokenizer"
            )
