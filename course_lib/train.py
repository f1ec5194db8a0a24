"""The course's training loop: one small engine for a notebook on a laptop and for a multi-GPU run.

``train(model, data, TrainConfig(...))`` trains any model whose forward is ``model(x, y) -> (logits, loss)`` on
random windows of a token stream, with AdamW, linear warmup then cosine decay, gradient clipping and gradient
accumulation, evaluates on a held-out split every ``eval_interval`` steps, and returns a ``History`` of losses.
Everything a GPU run wants (bf16/fp16 autocast, ``torch.compile``, DistributedDataParallel under ``torchrun``)
sits behind a switch that is off on the CPU, so the code a learner reads is the code a cluster runs.

Checkpoints (``out_dir``) resume exactly: on the CPU, 2N steps in one go and N steps, save, resume, N more give
bit-identical losses and weights, because the checkpoint carries the optimizer moments and every random
generator the loop draws from. Built in chapter 05; ``python -m course_lib.train --config FILE`` runs it from a
shell, and ``torchrun --nproc_per_node=K -m course_lib.train --config FILE`` on K processes.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import numbers
import os
import time
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from course_lib.checkpoint import INDEX, checkpoint_info, load_checkpoint, save_checkpoint, unwrap
from course_lib.checks import check_positive_int, check_positive_ints
from course_lib.data import check_example_pair, sample_example_batch, sample_lm_batch
from course_lib.device import can_compile, get_device
from course_lib.transformer import out_of_range

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# split name -> a 1-D token stream, or fixed-length (inputs, targets) examples; see train()
SplitData = Mapping[str, "torch.Tensor | tuple[torch.Tensor, torch.Tensor]"]


@dataclass
class TrainConfig:
    """Every knob of a training run. Sizes are per process; the tokens of one optimizer step are
    ``batch_size * block_size * grad_accum_steps * world_size``."""

    max_steps: int = 2000  # optimizer steps in total (a resumed run continues up to this)
    batch_size: int = 12  # sequences per micro-batch
    block_size: int = 64  # tokens per sequence (at most the model's block_size)
    grad_accum_steps: int = 1  # micro-batches summed into one optimizer step
    # AdamW: weight decay applies to matrices only (see configure_optimizer)
    learning_rate: float = 1e-3
    min_lr: float = 1e-4  # where the cosine decay ends
    warmup_steps: int = 100  # linear warmup from ~0 to learning_rate
    lr_decay_steps: int | None = None  # cosine decay ends here; None: at max_steps
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0  # max global gradient norm; 0 turns clipping off
    # evaluation and checkpoints
    eval_interval: int = 250  # evaluate every this many steps and at the end; 0: never
    eval_batches: int = 20  # batches per split and evaluation (the same batches every time)
    out_dir: str | None = None  # checkpoint directory; None: no checkpoints
    checkpoint_interval: int = 0  # also save every this many steps; 0: only at the end
    # engine
    device: str | None = None  # None: course_lib.get_device() (CUDA, then MPS, then CPU)
    precision: str = "auto"  # auto: bf16 autocast on CUDA with bf16, fp16 + grad scaler on older CUDA, fp32 elsewhere
    compile: bool | None = None  # torch.compile; None: on for CUDA only (it does not pay for small CPU models)
    seed: int = 1337
    progress: bool = True  # tqdm bar with loss and tokens/s

    def __post_init__(self) -> None:
        check_positive_ints(self, ("max_steps", "batch_size", "block_size", "grad_accum_steps", "eval_batches"))
        check_positive_int("TrainConfig.lr_decay_steps", self.lr_decay_steps, optional=True)
        for name in ("warmup_steps", "eval_interval", "checkpoint_interval"):
            _check_number(self, name, lambda v: v >= 0, "an int >= 0", integer=True)
        _check_number(self, "seed", lambda v: True, "an int", integer=True)
        _check_number(self, "learning_rate", lambda v: v > 0, "a positive number")
        lr = self.learning_rate
        _check_number(self, "min_lr", lambda v: 0 <= v <= lr, f"a number in [0, learning_rate={lr}]")
        _check_number(self, "weight_decay", lambda v: v >= 0, "a number >= 0 (0 turns weight decay off)")
        _check_number(self, "grad_clip", lambda v: v >= 0, "a number >= 0 (0 turns clipping off)")
        for name in ("beta1", "beta2"):
            _check_number(self, name, lambda v: 0 <= v < 1, "a number in [0, 1) (0.9 and 0.95-0.999 are usual)")
        for name, optional in (("compile", True), ("progress", False)):
            value = getattr(self, name)
            if not isinstance(value, bool) and not (optional and value is None):  # the string "False" is truthy
                raise ValueError(
                    f"TrainConfig.{name} must be True or False{' or None' if optional else ''}, got {value!r}"
                )
        # a Path or torch.device is fine to pass, but the checkpoint index stores the config as JSON
        if isinstance(self.out_dir, os.PathLike):
            self.out_dir = os.fspath(self.out_dir)
        if isinstance(self.device, torch.device):
            self.device = str(self.device)
        for name in ("out_dir", "device"):
            if not isinstance(getattr(self, name), (str, type(None))):
                raise ValueError(f"TrainConfig.{name} must be a str or None, got {getattr(self, name)!r}")
        if self.lr_decay_steps is None and self.warmup_steps > self.max_steps:
            raise ValueError(
                f"TrainConfig.warmup_steps ({self.warmup_steps}) is longer than the run (max_steps={self.max_steps}): "
                "the learning rate would never reach learning_rate; lower warmup_steps (a tenth of the run is usual)"
            )
        if self.lr_decay_steps is not None and self.lr_decay_steps < max(1, self.warmup_steps):
            raise ValueError(
                f"TrainConfig.lr_decay_steps ({self.lr_decay_steps}) must be at least warmup_steps "
                f"({self.warmup_steps}); use None to decay until max_steps"
            )
        if self.precision not in PRECISIONS:
            raise ValueError(f"TrainConfig.precision must be one of {PRECISIONS}, got {self.precision!r}")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        """Build a config from a dict (a JSON file's "train" section), refusing keys it does not know."""
        return dataclass_from_dict(cls, values, "training config")


def _check_number(
    config: TrainConfig, name: str, ok: Callable[[float], bool], allowed: str, integer: bool = False
) -> None:
    """Raise unless ``config.name`` is a finite integer (or real number, unless ``integer``) for which ``ok`` holds;
    store it as a plain int or float (a NumPy scalar from a sweep is welcome, but the checkpoint index is JSON).

    A bool is refused (``True`` is no step count), and so is a string: ``"3e-4"`` from a hand-edited file would
    otherwise fail deep inside torch, and NaN would train every weight to NaN.
    """
    value = getattr(config, name)
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ValueError(f"TrainConfig.{name} must be {allowed}, got {value!r}")
    value = int(value) if isinstance(value, numbers.Integral) else float(value)
    if not math.isfinite(value) or not ok(value):
        raise ValueError(f"TrainConfig.{name} must be {allowed}, got {value!r}")
    setattr(config, name, value)


def check_keys(cls: type, values: Mapping[str, Any], what: str) -> None:
    """Refuse a key the dataclass ``cls`` does not have, suggesting the closest one.

    A typo such as ``"learning_rte"`` would otherwise be silently ignored and the run would use the default.
    """
    known = [f.name for f in dataclasses.fields(cls)]
    for key in values:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
            raise ValueError(f"unknown {what} key {key!r}; {hint}")


def dataclass_from_dict(cls: type, values: Mapping[str, Any], what: str) -> Any:
    """``cls(**values)``, with unknown keys refused by ``check_keys``."""
    check_keys(cls, values, what)
    return cls(**values)


@dataclass
class History:
    """What a run measured: one training loss per step, and the evaluations."""

    steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    eval_train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    tokens_per_s: float = 0.0  # mean over the steps this call ran
    seconds: float = 0.0  # wall time of this call, evaluations included


def lr_at(step: int, config: TrainConfig) -> float:
    """Learning rate of optimizer step ``step`` (0-based): linear warmup, then cosine decay to ``min_lr``.

    Warmup keeps the first updates small while Adam's moment estimates are still noise; the cosine tail lets
    the loss settle into the minimum it has found instead of bouncing around it.
    """
    decay_steps = config.lr_decay_steps or config.max_steps
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    if step >= decay_steps:
        return config.min_lr
    progress = (step - config.warmup_steps) / max(1, decay_steps - config.warmup_steps)
    return config.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (config.learning_rate - config.min_lr)


def configure_optimizer(model: nn.Module, config: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with weight decay on the matrices (linear and embedding weights) and none on biases and norm gains.

    Decay pulls weights towards zero; for a bias or a LayerNorm gain that only shifts or rescales a
    feature, there is nothing to regularise, and shrinking a gain towards 0 would fight the normalisation.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    fused = device.type == "cuda"  # one kernel for all parameters; on the CPU the default loop is fast enough here
    return torch.optim.AdamW(groups, lr=config.learning_rate, betas=(config.beta1, config.beta2), fused=fused or None)


def _init_distributed() -> tuple[int, int, int]:
    """(rank, world_size, local_rank), joining the process group when launched by torchrun (it sets RANK etc.)."""
    if "RANK" not in os.environ or int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return 0, 1, 0
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and os.environ.get("COURSE_DEVICE", "") != "cpu" else "gloo"
        dist.init_process_group(backend=backend)
    return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0"))


class Trainer:
    """The state of one run (model, optimizer, generators, step) and the pieces of a step.

    ``train()`` is the usual entry point; the class exists so that a notebook or a test can run one step at a
    time (``backward()`` then ``update()``) and look at the gradients in between.
    """

    def __init__(
        self,
        model: nn.Module,
        data: SplitData,
        config: TrainConfig,
        resume: str | os.PathLike | None = None,
    ) -> None:
        self.config = config
        self.data = _check_data(data, model, config)
        if resume is not None and not os.path.exists(resume):
            raise FileNotFoundError(f"resume={str(resume)!r} does not exist; pass the out_dir of an earlier run")
        if resume is None and config.out_dir and os.path.isfile(os.path.join(config.out_dir, INDEX)):
            raise FileExistsError(  # a fresh run would replace that checkpoint at its first save
                f"out_dir={config.out_dir!r} already holds a checkpoint; pass resume={config.out_dir!r} to continue "
                f"that run (--resume {config.out_dir} on the command line), or start afresh in a new out_dir "
                "(--set train.out_dir=...) or after deleting the old one"
            )
        self.rank, self.world_size, local_rank = _init_distributed()
        self.device = _pick_device(config, local_rank if self.world_size > 1 else None)

        self.raw_model = unwrap(model).to(self.device)
        self.optimizer = configure_optimizer(self.raw_model, config, self.device)
        # gradients left by an interrupted or diverged earlier run on this model would be added to the first step's
        self.optimizer.zero_grad(set_to_none=True)
        self.precision = _resolve_precision(config.precision, self.device)
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        self.autocast = torch.autocast(self.device.type, dtype=dtype) if dtype else nullcontext()
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        self.generator = torch.Generator().manual_seed(config.seed + self.rank)  # each rank draws its own batches
        self.step = 0
        if resume is not None:
            self._restore(resume)

        use_compile = config.compile if config.compile is not None else self.device.type == "cuda"
        self.model = torch.compile(self.raw_model) if use_compile and can_compile(self.device) else self.raw_model
        self.eval_model = self.model
        if self.world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.model, device_ids=ids)

    # -- one step ---------------------------------------------------------------------------------------------
    def batch(self, split: str, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """A (B, T) batch of inputs and targets from ``split``, on the training device."""
        cfg, data = self.config, self.data[split]
        if isinstance(data, tuple):  # fixed-length (inputs, targets) examples
            return sample_example_batch(data, cfg.batch_size, generator or self.generator, self.device)
        return sample_lm_batch(data, cfg.batch_size, cfg.block_size, generator or self.generator, self.device)

    def backward(self) -> float:
        """Forward and backward over ``grad_accum_steps`` micro-batches; returns the step's mean loss.

        Under DDP the gradient all-reduce runs only on the last micro-batch (``no_sync`` on the others), so
        accumulation costs no extra communication.
        """
        accum = self.config.grad_accum_steps
        total = torch.zeros((), device=self.device)
        for micro in range(accum):
            x, y = self.batch("train")
            last = micro == accum - 1
            sync = (
                self.model.no_sync() if isinstance(self.model, DistributedDataParallel) and not last else nullcontext()
            )
            with sync, self.autocast:
                _, loss = self.model(x, y)
                if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
                    raise TypeError(
                        f"model(x, y) must return (logits, loss) with the loss a scalar tensor, got {_describe(loss)}; "
                        "train() fits language models whose second argument is the targets"
                    )
                loss = loss / accum  # the mean over all micro-batches, not their sum
            self.scaler.scale(loss).backward()
            total += loss.detach()
        if self.world_size > 1:
            dist.all_reduce(total, op=dist.ReduceOp.AVG)  # log the loss of the whole step, not one rank's part
        return total.item()

    def update(self) -> float:
        """Clip, set this step's learning rate, take the AdamW step, clear the gradients; returns the lr used."""
        lr = lr_at(self.step, self.config)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        if self.config.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)  # clip the true gradients, not the fp16-scaled ones
            torch.nn.utils.clip_grad_norm_(self.raw_model.parameters(), self.config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return lr

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Mean loss on ``eval_batches`` batches of the train and val splits.

        The batches come from a generator seeded afresh each time, so every evaluation sees the same batches
        (curves compare like with like) and evaluating never moves the training generator (resume stays exact).
        """
        self.eval_model.eval()
        losses = {}
        for split in ("train", "val"):
            generator = torch.Generator().manual_seed(self.config.seed + 1_000_003 + self.rank)
            total = torch.zeros((), device=self.device)
            for _ in range(self.config.eval_batches):
                x, y = self.batch(split, generator)
                with self.autocast:
                    total += self.eval_model(x, y)[1].float()
            if self.world_size > 1:
                dist.all_reduce(total, op=dist.ReduceOp.AVG)
            losses[split] = total.item() / self.config.eval_batches
        self.eval_model.train()
        return losses

    # -- checkpoints ------------------------------------------------------------------------------------------
    def _rng_tensors(self) -> dict[str, torch.Tensor]:
        """Every random generator this rank draws from, as uint8 tensors."""
        states = {"batch": self.generator.get_state(), "torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            states["cuda"] = torch.cuda.get_rng_state(self.device)
        return states

    def save(self, directory: str | os.PathLike) -> None:
        """Write a resumable checkpoint (rank 0 writes; every rank's generator states go in it).

        Weights that hold NaN or inf are refused, so a diverged run never replaces the last good checkpoint.
        """
        params = list(self.raw_model.parameters())
        if not torch.stack([torch.isfinite(p).all() for p in params]).all():  # one sync per save, not per step
            bad = next(name for name, p in self.raw_model.named_parameters() if not torch.isfinite(p).all())
            raise self._diverged(f"the weights hold NaN or inf after step {self.step} (first: {bad})")
        tensors = {}
        for name, state in self._rng_tensors().items():
            gathered = [state]
            if self.world_size > 1:
                state = state.to(self.device)  # NCCL moves only GPU tensors
                gathered = [torch.empty_like(state) for _ in range(self.world_size)]
                dist.all_gather(gathered, state)
            tensors.update({f"rank{r}.{name}": s.cpu() for r, s in enumerate(gathered)})
        if self.rank == 0:
            save_checkpoint(
                directory,
                self.raw_model,
                self.optimizer,
                step=self.step,
                train_config=dataclasses.asdict(self.config),
                state={"world_size": self.world_size, "scaler": self.scaler.state_dict()},
                tensors=tensors,
            )
        if self.world_size > 1:
            dist.barrier()  # nobody resumes from a checkpoint that rank 0 is still writing

    def _diverged(self, what: str) -> FloatingPointError:
        """The error that stops a diverged run; it says which checkpoint is left in force."""
        cfg = self.config
        hint = "lower learning_rate" + ("" if cfg.grad_clip else " or turn on grad_clip (1.0 is usual)")
        if cfg.out_dir and os.path.isfile(os.path.join(cfg.out_dir, INDEX)):
            step = checkpoint_info(cfg.out_dir)["step"]
            kept = f"The last checkpoint in {cfg.out_dir} (step {step}) was kept: resume from it with those changes"
        else:
            kept = "No checkpoint was written" + ("" if cfg.out_dir else " (out_dir=None)")
        return FloatingPointError(f"{what}: the run diverged; {hint}. {kept}")

    def _restore(self, directory: str | os.PathLike) -> None:
        # save() always writes world_size beside the generator states; check both before loading anything
        saved_world = checkpoint_info(directory)["state"].get("world_size")
        if saved_world is None:
            raise ValueError(
                f"checkpoint {str(directory)!r} has no trainer state (random-generator states): it was not written "
                "by train(), so it cannot resume a run; load its weights with load_checkpoint and start a fresh run"
            )
        if saved_world != self.world_size:
            raise ValueError(
                f"checkpoint {str(directory)!r} was written by {saved_world} processes but this run has "
                f"{self.world_size}; exact resume needs the same number (torchrun --nproc_per_node={saved_world})"
            )
        checkpoint = load_checkpoint(directory, self.raw_model, self.optimizer)
        self.step = checkpoint.step
        if checkpoint.state.get("scaler"):
            self.scaler.load_state_dict(checkpoint.state["scaler"])
        rng = {k.split(".", 1)[1]: v for k, v in checkpoint.tensors.items() if k.startswith(f"rank{self.rank}.")}
        self.generator.set_state(rng["batch"])
        torch.set_rng_state(rng["torch"])
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], self.device)

    # -- the loop ---------------------------------------------------------------------------------------------
    def fit(self, callback: Callable[[History], None] | None = None) -> History:
        """Train up to ``max_steps``, evaluating every ``eval_interval`` steps; ``callback(history)`` runs after
        each evaluation (a live plot, say)."""
        cfg, history = self.config, History()
        tokens_per_step = cfg.batch_size * cfg.block_size * cfg.grad_accum_steps * self.world_size
        bar = tqdm(
            total=cfg.max_steps,
            initial=self.step,
            disable=not cfg.progress or self.rank != 0,
            desc="training",
            unit="step",
            leave=False,
        )
        start = time.perf_counter()
        train_seconds, steps_run = 0.0, 0
        try:
            while self.step < cfg.max_steps:
                if cfg.eval_interval and self.step % cfg.eval_interval == 0:
                    self._record_eval(history, callback)
                t0 = time.perf_counter()
                loss = self.backward()  # a float: backward() already waits for the device to read it
                # stop before update() and any save can spread the NaN to a checkpoint; under fp16 an overflow is
                # the grad scaler's to handle (it skips that update, lowers its scale), and save() checks the weights
                if not math.isfinite(loss) and not self.scaler.is_enabled():
                    self.optimizer.zero_grad(set_to_none=True)  # NaN gradients must not reach a rerun's first step
                    raise self._diverged(f"training loss became {loss} at step {self.step}")
                lr = self.update()
                train_seconds += time.perf_counter() - t0
                steps_run += 1
                history.steps.append(self.step - 1)
                history.train_loss.append(loss)
                history.lr.append(lr)
                bar.update(1)
                bar.set_postfix(
                    loss=f"{loss:.4f}", tok_s=f"{tokens_per_step * steps_run / train_seconds:,.0f}", refresh=False
                )
                if cfg.out_dir and cfg.checkpoint_interval and self.step % cfg.checkpoint_interval == 0:
                    self.save(cfg.out_dir)
        finally:
            bar.close()  # also when a step raises, so no stale bar is left in the notebook
        if cfg.eval_interval and (not history.eval_steps or history.eval_steps[-1] != self.step):
            self._record_eval(history, callback)
        if cfg.out_dir:
            self.save(cfg.out_dir)
        history.tokens_per_s = tokens_per_step * steps_run / train_seconds if train_seconds else 0.0
        history.seconds = time.perf_counter() - start
        return history

    def _record_eval(self, history: History, callback: Callable[[History], None] | None) -> None:
        losses = self.evaluate()
        history.eval_steps.append(self.step)
        history.eval_train_loss.append(losses["train"])
        history.val_loss.append(losses["val"])
        if callback is not None and self.rank == 0:
            callback(history)


def train(
    model: nn.Module,
    data: SplitData,
    config: TrainConfig,
    *,
    resume: str | os.PathLike | None = None,
    callback: Callable[[History], None] | None = None,
) -> History:
    """Train ``model`` on ``data``: split name ("train" and, to evaluate, "val") -> a 1-D token tensor to cut
    random windows from, or a pair ``(inputs, targets)`` of ``(N, block_size)`` tensors of whole examples
    (targets of -100 are ignored by the loss: a prompt the model reads but is not trained to write).

    ``model(x, y)`` must return ``(logits, loss)``. ``resume`` continues from a checkpoint directory exactly
    where it stopped. Under ``torchrun`` every process calls this same function; the model is wrapped in
    DistributedDataParallel and each rank draws its own batches.
    """
    return Trainer(model, data, config, resume=resume).fit(callback)


# -- checks and choices, all made before any work starts ---------------------------------------------------------
def _check_data(data: SplitData, model: nn.Module, config: TrainConfig) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise TypeError(
            f"data must be a dict of splits, e.g. {{'train': ids, 'val': val_ids}}, got {_describe(data)}; "
            "wrap a single token tensor as {'train': ids} and set eval_interval=0"
        )
    model_config = getattr(unwrap(model), "config", None)
    vocab_size = getattr(model_config, "vocab_size", None)
    model_block = getattr(model_config, "block_size", None)
    if model_block is not None and config.block_size > model_block:
        raise ValueError(
            f"TrainConfig.block_size={config.block_size} is larger than the model's block_size={model_block} "
            "(its position table has no rows beyond that); lower TrainConfig.block_size or build a bigger model"
        )
    needed = ("train", "val") if config.eval_interval else ("train",)
    for split in needed:
        if split not in data:
            raise ValueError(
                f"data has no {split!r} split (it has {sorted(data)}); pass a dict with 'train' and 'val' token "
                "tensors, or set eval_interval=0 to train without evaluating"
            )
    checked = {}
    for split in needed:
        tokens = data[split]
        if isinstance(tokens, (tuple, list)):
            checked[split] = _check_examples(split, tokens, config, vocab_size)
            continue
        if not isinstance(tokens, torch.Tensor) or tokens.dim() != 1 or tokens.is_floating_point():
            raise TypeError(f"data[{split!r}] must be a 1-D integer torch.Tensor of token ids, got {_describe(tokens)}")
        windows = len(tokens) - config.block_size
        if windows < 1:
            raise ValueError(
                f"data[{split!r}] has {len(tokens)} tokens, too few for one window of block_size={config.block_size} "
                "plus its target; lower block_size or use more data"
            )
        if config.batch_size > windows:
            raise ValueError(
                f"batch_size={config.batch_size} is larger than the {windows} distinct windows of block_size="
                f"{config.block_size} in data[{split!r}] ({len(tokens)} tokens); lower batch_size or use more data"
            )
        if vocab_size is not None:  # found now rather than as an IndexError some steps into the run
            _check_ids(tokens, vocab_size, f"data[{split!r}]")
        checked[split] = tokens.long().cpu()
    return checked


def _check_ids(ids: torch.Tensor, vocab_size: int, what: str, ignore: int | None = None) -> None:
    bad = out_of_range(ids, vocab_size, ignore)
    if bad is not None:
        allowed = f" (or {ignore}, ignored by the loss)" if ignore is not None else ""
        raise ValueError(
            f"{what} holds the id {bad}, outside the model's vocabulary [0, {vocab_size}){allowed}; "
            "encode the data with the tokenizer the model was built for"
        )


def _check_examples(
    split: str, examples: tuple | list, config: TrainConfig, vocab_size: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    kind = type(examples).__name__
    if examples and isinstance(examples[0], int) and not isinstance(examples[0], bool):  # token ids, not examples
        raise TypeError(
            f"data[{split!r}] is a {kind} of {len(examples):,} ints; wrap it as torch.tensor(ids) to train on it "
            "as a token stream"
        )
    check_example_pair(examples, f"data[{split!r}]")
    n, t = examples[0].shape
    if t != config.block_size:
        raise ValueError(
            f"data[{split!r}] examples are {t} tokens long but TrainConfig.block_size={config.block_size}; "
            f"set block_size={t} so that throughput and the model-size check count the right length"
        )
    if config.batch_size > n:
        raise ValueError(
            f"batch_size={config.batch_size} is larger than the {n} examples in data[{split!r}]; "
            "lower batch_size or use more examples"
        )
    empty = (examples[1] == -100).all(dim=1).nonzero().flatten().tolist()
    if empty:  # a batch of such rows has nothing to average: its loss would be NaN
        raise ValueError(
            f"data[{split!r}] has {len(empty)} example(s) whose targets are all -100 (first: row {empty[0]}); "
            "each example needs at least one target the loss counts, so drop those rows or lengthen block_size"
        )
    if vocab_size is not None:
        _check_ids(examples[0], vocab_size, f"data[{split!r}] inputs")
        _check_ids(examples[1], vocab_size, f"data[{split!r}] targets", ignore=-100)
    return examples[0].long().cpu(), examples[1].long().cpu()


def _describe(x: object) -> str:
    if isinstance(x, torch.Tensor):
        return f"a {x.dim()}-D {x.dtype} tensor"
    return f"a {type(x).__name__}"


def _pick_device(config: TrainConfig, local_rank: int | None) -> torch.device:
    device = get_device(config.device)
    if device.type == "cuda" and local_rank is not None:
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    return device


def _resolve_precision(precision: str, device: torch.device) -> str:
    if precision == "auto":
        if device.type != "cuda":
            return "fp32"  # bf16 autocast runs at 0.5-0.7x fp32 on a laptop CPU
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if precision == "fp16" and device.type != "cuda":
        raise ValueError(f"precision='fp16' needs a CUDA device, but training runs on {device}; use 'bf16' or 'fp32'")
    return precision


# -- the command line: python -m course_lib.train --config FILE ------------------------------------------------
CONFIG_SECTIONS = ("model", "data", "train")
PYTHON_WORDS = {"true": "true", "false": "false", "none": "null", "null": "null"}  # in any case: JSON's spelling


def load_run_config(path: str | os.PathLike, overrides: list[str] = ()) -> dict[str, dict[str, Any]]:
    """Read a run's JSON config ({"model": GPTConfig fields, "data": {...}, "train": TrainConfig fields}).

    ``overrides`` are ``section.key=value`` strings (``train.max_steps=100``); values parse as JSON, else stay
    strings, but Python's True/False/None are refused (JSON spells them true/false/null). Unknown sections and
    keys are refused here, before any data is read or anything is built.
    """
    from course_lib.gpt import GPTConfig

    if not os.path.isfile(path):
        raise FileNotFoundError(f"config file {str(path)!r} does not exist; see configs/ for examples")
    with open(path) as f:
        config = json.load(f)
    unknown = sorted(set(config) - set(CONFIG_SECTIONS))
    if unknown:
        raise ValueError(f"unknown config section(s) {unknown} in {path}; a run config has {list(CONFIG_SECTIONS)}")
    config = {section: dict(config.get(section, {})) for section in CONFIG_SECTIONS}
    for item in overrides:
        target, sep, raw = item.partition("=")
        section, dot, key = target.partition(".")
        if not sep or not dot or section not in CONFIG_SECTIONS:
            raise ValueError(f"override {item!r} must look like section.key=value with section in {CONFIG_SECTIONS}")
        try:
            config[section][key] = json.loads(raw)
        except json.JSONDecodeError:
            if raw.strip().lower() in PYTHON_WORDS:  # as a string, "False" is truthy and "None" a folder name
                raise ValueError(
                    f"override {item!r} would set the string {raw!r}; write JSON: true/false/null "
                    f"({target}={PYTHON_WORDS[raw.strip().lower()]}), or {target}='\"{raw}\"' for the text itself"
                ) from None
            config[section][key] = raw
    data_keys = {"dataset", "size"}
    if set(config["data"]) - data_keys:
        raise ValueError(
            f"unknown data config key(s) {sorted(set(config['data']) - data_keys)}; known: {sorted(data_keys)}"
        )
    if config["data"].get("dataset", "shakespeare") != "shakespeare":
        raise ValueError(f"data.dataset {config['data']['dataset']!r} is not supported; use 'shakespeare'")
    if "vocab_size" in config["model"]:
        raise ValueError("model.vocab_size comes from the tokenizer; remove it from the config")
    check_keys(GPTConfig, config["model"], "model config")
    check_keys(TrainConfig, config["train"], "training config")
    return config


def build_run(config: Mapping[str, Mapping[str, Any]]) -> tuple[nn.Module, dict[str, torch.Tensor], TrainConfig, Any]:
    """The GPT, the character-level Shakespeare token streams, the TrainConfig and the tokenizer of a run config."""
    from course_lib.data import load_shakespeare
    from course_lib.gpt import GPT, GPTConfig
    from course_lib.tokenizers import CharTokenizer

    train_config = TrainConfig.from_dict(config["train"])
    text = load_shakespeare(config["data"].get("size", "tiny"))
    tokenizer = CharTokenizer.from_text(text.train + text.val)
    data = {
        "train": torch.tensor(tokenizer.encode(text.train), dtype=torch.long),
        "val": torch.tensor(tokenizer.encode(text.val), dtype=torch.long),
    }
    torch.manual_seed(train_config.seed)  # the same initial weights on every rank
    model = GPT(dataclass_from_dict(GPTConfig, dict(config["model"], vocab_size=tokenizer.vocab_size), "model config"))
    return model, data, train_config, tokenizer


def main(argv: list[str] | None = None) -> History:
    """``python -m course_lib.train --config FILE [--set train.max_steps=100 ...] [--resume DIR]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m course_lib.train", description=main.__doc__)
    parser.add_argument("--config", required=True, help="JSON run config, e.g. configs/shakespeare_char.json")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one config value, e.g. --set train.max_steps=100 (repeatable)",
    )
    parser.add_argument("--resume", help="checkpoint directory to continue from (usually the run's out_dir)")
    args = parser.parse_args(argv)

    config = load_run_config(args.config, args.overrides)
    model, data, train_config, tokenizer = build_run(config)
    rank = int(os.environ.get("RANK", "0"))
    if rank == 0:
        size = sum(p.numel() for p in model.parameters())
        print(f"{args.config}: {size / 1e6:.2f}M parameters, {len(data['train']):,} training tokens")
        if train_config.out_dir:
            os.makedirs(train_config.out_dir, exist_ok=True)
            tokenizer.save(os.path.join(train_config.out_dir, "tokenizer.json"))

    def report(history: History) -> None:
        print(f"step {history.eval_steps[-1]}: train {history.eval_train_loss[-1]:.4f}, val {history.val_loss[-1]:.4f}")

    try:
        history = train(model, data, train_config, resume=args.resume, callback=report)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    if rank == 0:
        print(f"done: {len(history.train_loss)} steps in {history.seconds:.1f} s, {history.tokens_per_s:,.0f} tokens/s")
    return history


__all__ = ["History", "TrainConfig", "Trainer", "configure_optimizer", "dataclass_from_dict", "lr_at", "main", "train"]

if __name__ == "__main__":
    main()
