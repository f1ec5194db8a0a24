"""Checkpoints that are safe to load and safe to interrupt.

A checkpoint is a directory:

    checkpoint.json                the step, the model's and the training configs, and which files below are current
    model-000500.safetensors       the weights
    trainer-000500.safetensors     optimizer moments and random-generator states (only when training is resumable)

Nothing here unpickles: weights and optimizer tensors are safetensors, everything else is JSON, so a checkpoint
from a stranger cannot run code on your machine. Writing is crash-safe: each file is written under a temporary
name and renamed into place, and ``checkpoint.json`` (the only file a loader starts from) is renamed last, so a
run killed mid-save (Ctrl-C, out of memory) leaves the previous complete checkpoint in force. The index also
records each tensor file's sha256, checked before loading: a file damaged or swapped after saving is refused
instead of loading wrong numbers without a word (safetensors itself has no checksum). Used by
``course_lib.train`` and by the chapters that load a trained model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, load_model, save_file, save_model
from torch import nn
from torch.nn.parallel import DistributedDataParallel

INDEX = "checkpoint.json"
FORMAT = 1
DAMAGED = "save it again, or point at another checkpoint"  # the advice for any damaged checkpoint


@dataclass
class Checkpoint:
    """What ``load_checkpoint`` hands back besides the weights it loaded into the model."""

    step: int
    model_config: dict[str, Any] | None
    train_config: dict[str, Any] | None
    state: dict[str, Any]  # JSON-able trainer state (e.g. the fp16 grad scaler)
    tensors: dict[str, torch.Tensor]  # trainer tensors other than the optimizer's (random-generator states)


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside DistributedDataParallel (``.module``) and ``torch.compile`` (``._orig_mod``) wrappers.

    Checkpoints always hold the plain model's names, so a checkpoint saved from a compiled multi-GPU run loads
    into a plain model in a notebook.
    """
    while True:
        if isinstance(model, DistributedDataParallel):
            model = model.module
        elif isinstance(getattr(model, "_orig_mod", None), nn.Module):  # what torch.compile returns
            model = model._orig_mod
        else:
            return model


def model_config_dict(model: nn.Module) -> dict[str, Any] | None:
    """The model's config dataclass (``model.config``) as the JSON-shaped dict a checkpoint stores, if it has one."""
    config = getattr(unwrap(model), "config", None)
    if config is None or not dataclasses.is_dataclass(config):
        return None
    return json.loads(json.dumps(dataclasses.asdict(config)))  # tuples become lists, as after a round trip


def _model_class(model: nn.Module) -> str:
    cls = type(unwrap(model))
    return f"{cls.__module__}.{cls.__qualname__}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_replace(tmp: Path, final: Path) -> None:
    """Flush ``tmp`` to disk, then rename it over ``final`` in one atomic step."""
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, final)


def _temp_path(directory: Path, name: str) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    os.close(fd)
    return Path(tmp)


def _optimizer_to_safe(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    """Split an optimizer's state dict into flat tensors (for safetensors) and JSON-able param groups."""
    sd = optimizer.state_dict()
    tensors = {}
    for index, slots in sd["state"].items():
        for slot, value in slots.items():
            if not isinstance(value, torch.Tensor):
                raise TypeError(
                    f"optimizer state {slot!r} of parameter {index} is a {type(value).__name__}, not a tensor; "
                    "checkpoints store optimizer state as tensors only (AdamW and SGD qualify)"
                )
            tensors[f"optimizer.{index}.{slot}"] = value.detach().cpu().contiguous()
    return tensors, json.loads(json.dumps(sd["param_groups"]))


def _optimizer_from_safe(tensors: Mapping[str, torch.Tensor], param_groups: list[dict[str, Any]]) -> dict[str, Any]:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, slot = key.split(".", 2)
            state.setdefault(int(index), {})[slot] = value
    for group in param_groups:
        if "betas" in group:
            group["betas"] = tuple(group["betas"])  # JSON turned the tuple into a list
    return {"state": state, "param_groups": param_groups}


def save_checkpoint(
    directory: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    step: int = 0,
    train_config: Mapping[str, Any] | None = None,
    state: Mapping[str, Any] | None = None,
    tensors: Mapping[str, torch.Tensor] | None = None,
) -> Path:
    """Write a checkpoint of ``model`` (and, for resuming, ``optimizer`` plus trainer ``state``/``tensors``).

    Returns the path of ``checkpoint.json``. Files of older steps in ``directory`` are removed once the new
    index is in place, so a directory holds one checkpoint.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model = unwrap(model)
    weights, trainer = f"model-{step:06d}.safetensors", f"trainer-{step:06d}.safetensors"

    tmp = _temp_path(directory, weights)
    save_model(model, str(tmp))  # handles tied weights (the GPT's token table and output head share one tensor)
    sha256 = {weights: _sha256(tmp)}
    _fsync_replace(tmp, directory / weights)

    param_groups = None
    trainer_tensors = {f"trainer.{k}": v.detach().cpu().contiguous() for k, v in (tensors or {}).items()}
    if optimizer is not None:
        optimizer_tensors, param_groups = _optimizer_to_safe(optimizer)
        trainer_tensors.update(optimizer_tensors)
    if trainer_tensors:
        tmp = _temp_path(directory, trainer)
        save_file(trainer_tensors, str(tmp))
        sha256[trainer] = _sha256(tmp)
        _fsync_replace(tmp, directory / trainer)

    index = {
        "format": FORMAT,
        "step": step,
        "model_class": _model_class(model),
        "model_config": model_config_dict(model),
        "train_config": dict(train_config) if train_config is not None else None,
        "weights": weights,
        "trainer": trainer if trainer_tensors else None,
        "sha256": sha256,
        "optimizer_class": type(optimizer).__name__ if optimizer is not None else None,
        "optimizer_param_groups": param_groups,
        "state": dict(state or {}),
    }
    tmp = _temp_path(directory, INDEX)
    tmp.write_text(json.dumps(index, indent=2) + "\n")
    _fsync_replace(tmp, directory / INDEX)

    for old in [*directory.glob("model-*.safetensors"), *directory.glob("trainer-*.safetensors")]:
        if old.name not in (weights, index["trainer"]):
            old.unlink()
    return directory / INDEX


def checkpoint_info(directory: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint's ``checkpoint.json`` (step, configs, file names) without loading any tensor.

    A notebook uses it to build the right model before loading the weights:
    ``GPT(GPTConfig(**checkpoint_info(path)["model_config"]))``.
    """
    path = Path(directory)
    index_path = path if path.name == INDEX else path / INDEX
    if not index_path.is_file():
        where = (
            "the directory exists but has no checkpoint.json"
            if path.is_dir()
            else "that is a file, not a checkpoint directory"
            if path.is_file()
            else "the path does not exist"
        )
        raise FileNotFoundError(
            f"no checkpoint at {str(path)!r}: {where}; pass the directory that save_checkpoint() or a training run "
            "with out_dir wrote"
        )
    try:
        info = json.loads(index_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{index_path} is not valid JSON ({err}); the checkpoint is damaged: {DAMAGED}") from err
    if not isinstance(info, dict):
        raise ValueError(f"{index_path} holds a JSON {type(info).__name__}, not a checkpoint index: {DAMAGED}")
    missing = [key for key in ("step", "model_class", "weights", "trainer") if key not in info]
    if missing:
        raise ValueError(f"{index_path} lacks the entries {missing} of a checkpoint index: {DAMAGED}")
    if info.get("format") != FORMAT:
        raise ValueError(f"{index_path} has checkpoint format {info.get('format')!r}; this course_lib reads {FORMAT}")
    info["directory"] = str(index_path.parent)
    return info


@contextmanager
def _reading(path: Path, info: dict[str, Any] | None = None) -> Iterator[None]:
    """Name the file, and what to do, when a checkpoint's tensor file is missing, cut short or changed.

    With the checkpoint's ``info``, the file is first checked against the sha256 recorded when it was saved
    (checkpoints saved before hashes were recorded are read unchecked).
    """
    expected = ((info or {}).get("sha256") or {}).get(path.name)
    try:
        if expected is not None and _sha256(path) != expected:
            raise ValueError(_damaged(path, "its sha256 differs from the one recorded when it was saved"))
        yield
    except (SafetensorError, OSError) as err:
        raise ValueError(_damaged(path, err)) from err


def _damaged(path: Path, why: object) -> str:
    return f"checkpoint file {str(path)!r} is missing, truncated or corrupt ({why}); {DAMAGED}"


def _describe_mismatch(info: dict[str, Any], model: nn.Module) -> str | None:
    """Say in one sentence how the checkpoint's model differs from ``model``, or None when they agree."""
    if info["model_class"] != _model_class(model):
        return f"the checkpoint holds a {info['model_class']}, but the model is a {_model_class(model)}"
    saved, ours = info["model_config"], model_config_dict(model)
    if saved is not None and ours is not None and saved != ours:
        keys = sorted(set(saved) | set(ours))
        diffs = [
            f"{k}: checkpoint {saved.get(k)!r}, model {ours.get(k)!r}" for k in keys if saved.get(k) != ours.get(k)
        ]
        return "the model configs differ (" + "; ".join(diffs) + ")"
    weights = Path(info["directory"]) / info["weights"]
    with _reading(weights), safe_open(weights, framework="pt") as f:  # the header only; hashed when loaded
        shapes = {key: tuple(f.get_slice(key).get_shape()) for key in f.keys()}
    ours_sd = model.state_dict()
    stored_ptrs = {ours_sd[k].data_ptr() for k in shapes if k in ours_sd}
    problems = [
        f"{k} is {shapes[k]} in the checkpoint but {tuple(ours_sd[k].shape)} in the model"
        for k in shapes
        if k in ours_sd and tuple(ours_sd[k].shape) != shapes[k]
    ]
    problems += [f"{k} is in the checkpoint but not in the model" for k in shapes if k not in ours_sd]
    problems += [
        f"{k} is in the model but not in the checkpoint"
        for k, v in ours_sd.items()
        if k not in shapes and v.data_ptr() not in stored_ptrs
    ]  # tied weights are stored once
    return "the weights differ (" + "; ".join(problems) + ")" if problems else None


def load_checkpoint(
    directory: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
) -> Checkpoint:
    """Load the weights (and optimizer state, if given) from ``directory`` into ``model``, in place.

    A checkpoint of a different architecture or config is refused before anything is copied, with a message
    that names each difference.
    """
    info = checkpoint_info(directory)
    model = unwrap(model)
    mismatch = _describe_mismatch(info, model)
    if mismatch:
        raise ValueError(
            f"checkpoint {info['directory']!r} does not fit this model: {mismatch}; build the model from "
            "checkpoint_info(path)['model_config'] or point at a checkpoint of this model"
        )
    directory = Path(info["directory"])
    trainer_tensors = {}
    if info["trainer"]:
        with _reading(directory / info["trainer"], info):
            trainer_tensors = load_file(directory / info["trainer"])
    if optimizer is not None:
        if info.get("optimizer_param_groups") is None:
            raise ValueError(
                f"checkpoint {info['directory']!r} holds weights only (no optimizer state); it cannot resume"
            )
        saved_class = info.get("optimizer_class")
        if saved_class not in (None, type(optimizer).__name__):
            raise ValueError(
                f"checkpoint {info['directory']!r} holds {saved_class} state, but this optimizer is "
                f"{type(optimizer).__name__}; resume with the optimizer the run was saved with"
            )
        saved_sizes = [len(g["params"]) for g in info["optimizer_param_groups"]]
        our_sizes = [len(g["params"]) for g in optimizer.param_groups]
        if saved_sizes != our_sizes:
            raise ValueError(
                f"the optimizer's parameter groups differ: checkpoint {saved_sizes}, this optimizer {our_sizes} "
                "parameters per group; build the optimizer the same way as the run that saved it"
            )
    with _reading(directory / info["weights"], info):
        load_model(model, str(directory / info["weights"]), strict=True)
    if optimizer is not None:
        optimizer.load_state_dict(_optimizer_from_safe(trainer_tensors, info["optimizer_param_groups"]))
    prefix = "trainer."
    return Checkpoint(
        step=info["step"],
        model_config=info["model_config"],
        train_config=info["train_config"],
        state=info["state"],
        tensors={k[len(prefix) :]: v for k, v in trainer_tensors.items() if k.startswith(prefix)},
    )


__all__ = ["Checkpoint", "checkpoint_info", "load_checkpoint", "model_config_dict", "save_checkpoint", "unwrap"]
