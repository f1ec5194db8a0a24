"""``python -m course_lib.bench``: our GPT against Hugging Face's and nanoGPT's, model against model.

The same GPT-2 architecture is built three ways (``course_lib.gpt.GPT``; ``transformers.GPT2LMHeadModel`` from a
``GPT2Config``, random init, nothing downloaded; nanoGPT's ``model.py`` when ``--nanogpt DIR`` or ``$NANOGPT_DIR``
points at a folder holding it) and measured in one process, repetitions interleaved so that a busy machine slows
all of them alike:

- training tokens/s: forward, backward and an AdamW step, fp32, the same optimizer for all;
- batch-1 greedy generation tokens/s: ours with its KV cache and without, HF's ``generate`` (cached), nanoGPT's
  ``generate`` (uncached), and a floor that no cached implementation can beat here: the model's matrix products
  alone, each weight read once per token (``matmuls_only``);
- MFU: model FLOPs per second over a fp32 matmul peak measured here (the best of several large matmuls).

``--time-to-quality`` instead trains the chapter-05 character model twice, side by side in slices: nanoGPT's CPU
recipe and ours, and reports the training wall time each needs to reach a validation loss. Results are written up
in ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.gpt import GPT, GPTConfig
from course_lib.train import TrainConfig, Trainer, configure_optimizer

NANOGPT_ENV = "NANOGPT_DIR"
# nanoGPT's MLP uses the exact GELU; GPT-2 (and our default, for loading its weights) the tanh approximation,
# whose CPU kernel is slower. The benchmark builds all three with the exact one so that they are one model.
ACTIVATION = "gelu"


@dataclass(frozen=True)
class Size:
    """One benchmark configuration: the model shape and the training batch."""

    name: str
    n_layer: int
    n_head: int
    n_embd: int
    block_size: int
    batch_size: int
    vocab_size: int = 65


SIZES = {
    # the character-level model of chapter 05 (nanoGPT's CPU recipe for Shakespeare)
    "char": Size("char", n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12),
    # about 10.7M parameters: nanoGPT's "baby GPT" width and depth, with a CPU-sized batch
    "10m": Size("10m", n_layer=6, n_head=6, n_embd=384, block_size=256, batch_size=4),
}


# -- the three implementations, each as model(x, y) -> (logits, loss) ---------------------------------------------
class HFGPT2(nn.Module):
    """``GPT2LMHeadModel`` behind our interface; the loss is computed the same way as ours."""

    def __init__(self, size: Size, block_size: int) -> None:
        super().__init__()
        from transformers import GPT2Config, GPT2LMHeadModel

        config = GPT2Config(
            vocab_size=size.vocab_size, n_positions=block_size, n_embd=size.n_embd, n_layer=size.n_layer,
            n_head=size.n_head, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, activation_function=ACTIVATION,
            bos_token_id=None, eos_token_id=None, pad_token_id=0,
        )  # fmt: skip
        self.hf = GPT2LMHeadModel(config)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None):
        logits = self.hf(input_ids=x).logits
        loss = None if y is None else F.cross_entropy(logits.flatten(0, 1), y.flatten())
        return logits, loss

    @torch.no_grad()
    def generate_greedy(self, idx: torch.Tensor, n: int) -> torch.Tensor:
        return self.hf.generate(idx, max_new_tokens=n, min_new_tokens=n, do_sample=False, use_cache=True)


class NanoGPT(nn.Module):
    """nanoGPT's ``GPT`` from its own ``model.py``; targets are made contiguous because it reshapes them with view."""

    def __init__(self, module, size: Size, block_size: int) -> None:
        super().__init__()
        config = module.GPTConfig(block_size=block_size, vocab_size=size.vocab_size, n_layer=size.n_layer,
                                  n_head=size.n_head, n_embd=size.n_embd, dropout=0.0, bias=True)  # fmt: skip
        self.gpt = module.GPT(config)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None):
        return self.gpt(x, None if y is None else y.contiguous())

    @torch.no_grad()
    def generate_greedy(self, idx: torch.Tensor, n: int) -> torch.Tensor:
        return self.gpt.generate(idx, n, temperature=1.0, top_k=1)  # top_k=1: the argmax, i.e. greedy


def ours(size: Size, block_size: int) -> GPT:
    return GPT(GPTConfig(vocab_size=size.vocab_size, block_size=block_size, n_layer=size.n_layer,
                         n_head=size.n_head, n_embd=size.n_embd, dropout=0.0, activation=ACTIVATION))  # fmt: skip


def load_nanogpt(folder: str | None):
    """nanoGPT's ``model.py`` imported from ``folder`` (it is never part of this repository), or None."""
    folder = folder or os.environ.get(NANOGPT_ENV)
    if not folder:
        return None
    path = Path(folder) / "model.py"
    if not path.is_file():
        raise FileNotFoundError(f"--nanogpt / ${NANOGPT_ENV} points at {folder}, which has no model.py")
    spec = importlib.util.spec_from_file_location("nanogpt_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def builders(nanogpt) -> dict[str, Callable[[Size, int], nn.Module]]:
    found = {"ours": ours, "hf": HFGPT2}
    if nanogpt is not None:
        found["nanogpt"] = lambda size, block: NanoGPT(nanogpt, size, block)
    return found


# -- measurements -------------------------------------------------------------------------------------------------
def matmul_peak(n: int = 1024, repeats: int = 10) -> float:
    """The best fp32 FLOPs per CPU-second of an (n, n) @ (n, n) product here: the ceiling MFU is measured against.

    Counted in CPU time, like the model's throughput in the MFU column, so that another program slowing the
    machine down changes neither and their ratio stays meaningful.
    """
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm up
    best = math.inf
    for _ in range(repeats):
        c0 = time.process_time()
        a @ b
        best = min(best, time.process_time() - c0)
    return 2 * n**3 / best


def training_seconds(model: nn.Module, optimizer: torch.optim.Optimizer, batches, steps: int) -> tuple[float, float]:
    """(wall, CPU) seconds of ``steps`` optimizer steps (forward, backward, AdamW) on the given batches.

    CPU seconds (all of this process's threads) barely change when other programs share the machine, so
    with ``--threads 1`` they compare implementations fairly on a busy laptop; wall seconds are what you wait.
    """
    t0, c0 = time.perf_counter(), time.process_time()
    for x, y in batches[:steps]:
        _, loss = model(x, y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - t0, time.process_time() - c0


def generation_seconds(generate: Callable[[torch.Tensor, int], torch.Tensor], new_tokens: int) -> tuple[float, float]:
    """(wall, CPU) seconds to generate ``new_tokens`` greedily after a one-token prompt, batch 1."""
    prompt = torch.zeros((1, 1), dtype=torch.long)
    t0, c0 = time.perf_counter(), time.process_time()
    out = generate(prompt, new_tokens)
    seconds = time.perf_counter() - t0, time.process_time() - c0
    assert out.shape == (1, 1 + new_tokens), f"generated {out.shape[1] - 1} tokens, expected {new_tokens}"
    return seconds


def matmuls_only(model: nn.Module, new_tokens: int) -> torch.Tensor:
    """The floor under batch-1 decoding: every linear layer of ``model`` applied once per token, nothing else.

    Each new token must read every weight once, and at batch 1 that is a matrix-vector product, bound by memory
    bandwidth rather than arithmetic. Timed like a generation (it returns a dummy (1, 1 + new_tokens) result), it
    says how much of a decoding step is weight traffic and how much is everything else: attention over the
    cache, norms, activations and the framework's per-call cost. The layers run as themselves, so the floor uses
    the same kernel as the model (``course_lib.linear.Linear`` splits a large one-vector product over the threads).
    """
    layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
    inputs = {layer.in_features: torch.zeros(1, 1, layer.in_features) for layer in layers}
    with torch.inference_mode():
        for _ in range(new_tokens):
            for layer in layers:
                layer(inputs[layer.in_features])
    return torch.zeros((1, 1 + new_tokens), dtype=torch.long)


def rotated(names: list[str], k: int) -> list[str]:
    """``names`` starting from its ``k``-th entry (wrapping round)."""
    k %= len(names)
    return names[k:] + names[:k]


def bench_size(size: Size, impls: dict, repeats: int, steps: int, new_tokens: int, peak: float) -> list[dict]:
    """Training and generation figures of every implementation at one size, repetitions interleaved."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    batches = [
        (x, torch.roll(x, -1, dims=1))
        for x in (torch.randint(size.vocab_size, (size.batch_size, size.block_size), generator=g) for _ in range(steps))
    ]
    models, optimizers, generators = {}, {}, {}
    for name, build in impls.items():
        torch.manual_seed(0)
        models[name] = build(size, size.block_size)
        optimizers[name] = configure_optimizer(models[name], TrainConfig(), torch.device("cpu"))
        training_seconds(models[name], optimizers[name], batches, 2)  # warm up allocator and kernels
        # generation needs room for the prompt plus new_tokens positions; the extra rows of the position
        # table cost nothing per token
        gen_model = build(size, max(size.block_size, 1 + new_tokens)).eval()
        if name == "ours":
            generators["ours (KV cache)"] = lambda p, n, m=gen_model: m.generate(p, n, temperature=0)
            generators["ours (no cache)"] = lambda p, n, m=gen_model: m.generate(p, n, temperature=0, use_cache=False)
            generators["floor: matmuls only"] = lambda p, n, m=gen_model: matmuls_only(m, n)
        else:
            label = f"{name} ({'generate, KV cache' if name == 'hf' else 'generate, no cache'})"
            generators[label] = gen_model.generate_greedy
    for generate in generators.values():
        generation_seconds(generate, 8)  # warm up

    train_times = {name: [] for name in models}
    gen_times = {name: [] for name in generators}
    for rep in range(repeats):
        # Each implementation goes first in turn: the one that follows the previous repetition's generation
        # runs meets cold caches, and a fixed order would always hand that cost to the same one. One untimed
        # step just before each timed block evens it out further.
        for name in rotated(list(models), rep):
            training_seconds(models[name], optimizers[name], batches, 1)
            train_times[name].append(training_seconds(models[name], optimizers[name], batches, steps))
        for name in rotated(list(generators), rep):
            gen_times[name].append(generation_seconds(generators[name], new_tokens))

    flops_per_token = models["ours"].flops_per_token(size.block_size, training=True)
    params = sum(p.numel() for p in models["ours"].parameters())
    rows = []
    tokens = steps * size.batch_size * size.block_size
    for what, count, measured in (("train", tokens, train_times), ("generate", new_tokens, gen_times)):
        for name, times in measured.items():
            rate = count / statistics.median(t[0] for t in times)
            rows.append(dict(size=size.name, params=params, what=what, impl=name, tokens_per_s=rate,
                             tokens_per_cpu_s=count / statistics.median(t[1] for t in times),
                             mfu=count / statistics.median(t[1] for t in times) * flops_per_token / peak
                             if what == "train" else None))  # fmt: skip
    return rows


def print_table(rows: list[dict]) -> None:
    """One line per measurement, with the ratio of ours to each peer (above 1: ours is faster), by wall clock
    and by CPU time."""
    print(f"{'size':<5} {'params':>7} {'measure':<9} {'implementation':<28} {'tokens/s':>10} {'MFU':>6} "
          f"{'tok/CPU-s':>10} {'ours/this':>9} {'(CPU)':>7}")  # fmt: skip
    for row in rows:
        ref = next(
            r for r in rows if r["size"] == row["size"] and r["what"] == row["what"] and r["impl"].startswith("ours")
        )
        ratio = ref["tokens_per_s"] / row["tokens_per_s"]
        cpu_ratio = ref["tokens_per_cpu_s"] / row["tokens_per_cpu_s"]
        mfu = f"{100 * row['mfu']:.1f}%" if row["mfu"] is not None else ""
        print(f"{row['size']:<5} {row['params'] / 1e6:>6.2f}M {row['what']:<9} {row['impl']:<28} "
              f"{row['tokens_per_s']:>10,.0f} {mfu:>6} {row['tokens_per_cpu_s']:>10,.0f} {ratio:>8.2f}x "
              f"{cpu_ratio:>6.2f}x")  # fmt: skip


# -- time to quality ----------------------------------------------------------------------------------------------
# nanoGPT's CPU recipe for Shakespeare (its README): train.py config/train_shakespeare_char.py --device=cpu
# --compile=False --eval_iters=20 --log_interval=1 --block_size=64 --batch_size=12 --n_layer=4 --n_head=4
# --n_embd=128 --max_iters=2000 --lr_decay_iters=2000 --dropout=0.0, with the config's lr 1e-3 (min 1e-4),
# 100 warmup iterations, beta2 0.99, weight decay 0.1 and clipping at 1.
NANOGPT_RECIPE = dict(max_steps=2000, batch_size=12, block_size=64, learning_rate=1e-3, min_lr=1e-4,
                      warmup_steps=100, weight_decay=0.1, beta2=0.99, grad_clip=1.0)  # fmt: skip
CHAPTER05_RECIPE_FILE = Path(__file__).resolve().parent.parent / "configs" / "shakespeare_char_ch05.json"

Point = tuple[int, float, float, float]  # (step, training wall seconds, training CPU seconds, validation loss)


def first_reaching(points: list[Point], target: float) -> Point | None:
    """The first evaluation of a run at or below ``target``, or None if it never got there."""
    return next((p for p in points if p[3] <= target), None)


def time_to_quality(nanogpt, target: float, check_every: int, recipe_file: Path, max_minutes: float) -> None:
    """Train nanoGPT's recipe and ours to the end in alternating slices of ``check_every`` steps; after each
    slice, evaluate (off the clock) on the same fixed validation windows of 64 characters. Reports the training
    time at which each run first reaches ``target`` and, the like-for-like figure, the loss nanoGPT's recipe
    ends at."""
    from course_lib.data import load_shakespeare, sample_lm_batch
    from course_lib.tokenizers import CharTokenizer
    from course_lib.train import load_run_config

    text = load_shakespeare("tiny")
    tokenizer = CharTokenizer.from_text(text.train + text.val)
    data = {"train": torch.tensor(tokenizer.encode(text.train)), "val": torch.tensor(tokenizer.encode(text.val))}
    g = torch.Generator().manual_seed(1234)
    val_batches = [sample_lm_batch(data["val"], 64, 64, g) for _ in range(16)]  # 65,536 characters

    size = Size("char", n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12, vocab_size=tokenizer.vocab_size)
    run = load_run_config(recipe_file)
    runs = {}
    quiet = dict(eval_interval=0, progress=False, device="cpu")
    nano = "nanoGPT recipe"
    if nanogpt is not None:
        torch.manual_seed(1337)
        runs[nano] = Trainer(NanoGPT(nanogpt, size, 64), data, TrainConfig(**NANOGPT_RECIPE, **quiet))
    torch.manual_seed(1337)
    model = GPT(GPTConfig(**run["model"], vocab_size=tokenizer.vocab_size))
    train_cfg = {k: v for k, v in run["train"].items() if k not in ("out_dir", "eval_interval", "eval_batches")}
    runs[f"ours ({recipe_file.name})"] = Trainer(model, data, TrainConfig(**(train_cfg | quiet)))

    @torch.no_grad()
    def val_loss(trainer: Trainer) -> float:
        trainer.raw_model.eval()
        loss = statistics.mean(trainer.raw_model(x, y)[1].item() for x, y in val_batches)
        trainer.raw_model.train()
        return loss

    points: dict[str, list[Point]] = {name: [] for name in runs}
    clock = {name: 0.0 for name in runs}  # training wall time
    cpu = {name: 0.0 for name in runs}  # training CPU time, which a busy machine barely changes

    def running(name: str) -> bool:
        return runs[name].step < runs[name].config.max_steps and clock[name] <= 60 * max_minutes

    while any(running(name) for name in runs):
        for name, trainer in runs.items():
            if not running(name):
                continue
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(min(check_every, trainer.config.max_steps - trainer.step)):
                trainer.backward()
                trainer.update()
            clock[name] += time.perf_counter() - t0
            cpu[name] += time.process_time() - c0
            points[name].append((trainer.step, clock[name], cpu[name], val_loss(trainer)))
            step, seconds, cpu_seconds, loss = points[name][-1]
            print(f"  {name:<40} step {step:>5}  {seconds:7.1f} s  {cpu_seconds:7.1f} CPU-s  val {loss:.4f}",
                  flush=True)  # fmt: skip

    targets = {f"{target}": target}
    if nanogpt is not None:
        targets[f"{points[nano][-1][3]:.4f} (where nanoGPT's recipe ends)"] = points[nano][-1][3]
    print("\ntraining time to reach each validation loss (evaluation off the clock):")
    for label, value in targets.items():
        print(f"  val <= {label}")
        for name in runs:
            hit = first_reaching(points[name], value)
            if hit is None:
                print(f"    {name:<40} not reached in {clock[name]:.1f} s ({runs[name].step} steps)")
                continue
            step, seconds, cpu_seconds, loss = hit
            share = f", {seconds / clock[nano]:.2f} of nanoGPT's whole run" if nano in runs else ""
            print(f"    {name:<40} {seconds:7.1f} s ({cpu_seconds:.1f} CPU-s) at step {step} (val {loss:.4f}){share}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m course_lib.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="char,10m", help=f"comma-separated, from {list(SIZES)}")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repetitions (the median is reported)")
    parser.add_argument("--steps", type=int, default=10, help="training steps per repetition")
    parser.add_argument("--new-tokens", type=int, default=256, help="tokens generated per repetition")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--nanogpt", help=f"folder with nanoGPT's model.py (default ${NANOGPT_ENV}); skipped if unset")
    parser.add_argument("--time-to-quality", action="store_true", help="race the chapter-05 recipe against nanoGPT's")
    parser.add_argument("--target", type=float, default=1.88, help="validation loss for --time-to-quality")
    parser.add_argument("--recipe", type=Path, default=CHAPTER05_RECIPE_FILE, help="our run config to race")
    parser.add_argument("--check-every", type=int, default=50, help="steps between evaluations in the race")
    parser.add_argument("--max-minutes", type=float, default=10.0, help="give up on a run after this training time")
    args = parser.parse_args(argv)
    unknown = [s for s in args.sizes.split(",") if s not in SIZES]
    if unknown:
        raise ValueError(f"unknown size(s) {unknown}; choose from {list(SIZES)}")

    torch.set_num_threads(args.threads)
    nanogpt = load_nanogpt(args.nanogpt)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{args.threads} threads, {time.strftime('%Y-%m-%d %H:%M %Z')}")  # fmt: skip
    if nanogpt is None:
        print(f"nanoGPT skipped: pass --nanogpt DIR or set ${NANOGPT_ENV} to a folder with its model.py")
    if args.time_to_quality:
        time_to_quality(nanogpt, args.target, args.check_every, args.recipe, args.max_minutes)
        return
    peak = matmul_peak()
    print(f"fp32 matmul peak measured here: {peak / 1e9:.0f} GFLOP per CPU-second (MFU below is in CPU time too)")
    for name in args.sizes.split(","):  # one table per size, printed as soon as it is measured
        print_table(bench_size(SIZES[name], builders(nanogpt), args.repeats, args.steps, args.new_tokens, peak))


if __name__ == "__main__":
    main()
