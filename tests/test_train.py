"""The training loop: schedule, optimizer groups, accumulation, exact resume, and clear errors on bad input."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from course_lib.checkpoint import checkpoint_info, save_checkpoint
from course_lib.data import sample_example_batch, sample_lm_batch
from course_lib.gpt import GPTConfig
from course_lib.plots import LiveLossPlot
from course_lib.train import (
    History,
    TrainConfig,
    Trainer,
    configure_optimizer,
    load_run_config,
    lr_at,
    main,
    train,
)


@dataclass
class TinyConfig:
    vocab_size: int = 13
    block_size: int = 16
    n_embd: int = 16
    dropout: float = 0.1


class TinyLM(nn.Module):
    """A throwaway language model with what the loop must handle: embeddings, a tied head, a norm, dropout."""

    def __init__(self, config: TinyConfig) -> None:
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.mix = nn.Linear(config.n_embd, config.n_embd)
        self.ln = nn.LayerNorm(config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.head.weight = self.wte.weight  # tied, as in GPT-2

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        T = idx.shape[1]
        h = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))
        h = h + self.drop(torch.tanh(self.mix(h)))
        h = h + h.cumsum(1) / torch.arange(1, T + 1, device=idx.device)[:, None]  # causal: add the prefix mean
        logits = self.head(self.ln(h))
        if targets is None:
            return logits, None
        return logits, F.cross_entropy(logits.flatten(0, 1), targets.flatten())


def make_model(seed: int = 0, **overrides) -> TinyLM:
    torch.manual_seed(seed)
    return TinyLM(TinyConfig(**overrides))


def make_data(n_train: int = 2000, n_val: int = 500, vocab: int = 13) -> dict[str, torch.Tensor]:
    """A learnable stream: 7 distinct tokens repeating, 10% replaced by noise; each token predicts the next."""
    g = torch.Generator().manual_seed(0)
    pattern = torch.randperm(vocab, generator=g)[:7]

    def stream(n: int) -> torch.Tensor:
        tokens = pattern.repeat(n // 7 + 1)[:n].clone()
        noise = torch.rand(n, generator=g) < 0.1
        tokens[noise] = torch.randint(vocab, (int(noise.sum()),), generator=g)
        return tokens

    return {"train": stream(n_train), "val": stream(n_val)}


def quick(**overrides) -> TrainConfig:
    base = dict(
        max_steps=20,
        batch_size=4,
        block_size=8,
        warmup_steps=3,
        eval_interval=10,
        eval_batches=2,
        learning_rate=3e-3,
        min_lr=3e-4,
        device="cpu",
        progress=False,
    )
    return TrainConfig(**(base | overrides))


def test_lr_schedule_matches_the_formula():
    cfg = TrainConfig(max_steps=100, learning_rate=1.0, min_lr=0.1, warmup_steps=10)
    assert lr_at(0, cfg) == pytest.approx(0.1)  # never exactly 0: the first step already moves
    assert lr_at(9, cfg) == pytest.approx(1.0)
    for step in (10, 37, 55, 99):
        expected = 0.1 + 0.45 * (1 + math.cos(math.pi * (step - 10) / 90))
        assert lr_at(step, cfg) == pytest.approx(expected, rel=1e-12)
    assert lr_at(100, cfg) == lr_at(500, cfg) == pytest.approx(0.1)
    assert (
        lr_at(50, TrainConfig(max_steps=100, lr_decay_steps=50, warmup_steps=10, learning_rate=1.0, min_lr=0.1)) == 0.1
    )


def test_the_optimizer_steps_with_the_scheduled_lr():
    """What AdamW is handed at each step (read by a step pre-hook), not only what lr_at computes."""
    cfg = quick(max_steps=16, warmup_steps=4, lr_decay_steps=12, eval_interval=0)  # warmup, cosine, then the floor
    trainer = Trainer(make_model(), make_data(), cfg)
    seen = []
    trainer.optimizer.register_step_pre_hook(lambda opt, args, kwargs: seen.append([g["lr"] for g in opt.param_groups]))
    history = trainer.fit()
    expected = [lr_at(step, cfg) for step in range(16)]
    assert expected[0] < expected[3] == cfg.learning_rate > expected[8] > expected[12] == cfg.min_lr  # all phases
    assert seen == [[lr, lr] for lr in expected]  # both groups: with and without weight decay
    assert history.lr == expected


def test_weight_decay_only_on_matrices():
    model = make_model()
    optimizer = configure_optimizer(model, TrainConfig(weight_decay=0.1), torch.device("cpu"))
    decayed, plain = optimizer.param_groups
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert {id(p) for p in decayed["params"]} == {id(model.wte.weight), id(model.wpe.weight), id(model.mix.weight)}
    assert {id(p) for p in plain["params"]} == {id(model.mix.bias), id(model.ln.weight), id(model.ln.bias)}


def test_training_learns_and_reports_history():
    data = make_data()
    seen = []
    history = train(
        make_model(),
        data,
        quick(max_steps=150, eval_interval=50, learning_rate=3e-2),
        callback=lambda h: seen.append(h.val_loss[-1]),
    )
    assert isinstance(history, History)
    assert history.steps == list(range(150)) and len(history.train_loss) == len(history.lr) == 150
    assert history.eval_steps == [0, 50, 100, 150] and seen == history.val_loss
    assert history.val_loss[0] > math.log(13) - 0.5  # starts near chance
    assert history.val_loss[-1] < 1.5  # well below chance: the repeating pattern is being learned
    assert history.tokens_per_s > 0


def test_resume_is_bit_identical(tmp_path):
    """2N steps in one go == N steps, save, load into a fresh model, N more (losses and weights, bit for bit)."""
    data = make_data()
    schedule = dict(eval_interval=5, lr_decay_steps=24)  # the first half is half of a 24-step run
    full = train(model_a := make_model(), data, quick(max_steps=24, **schedule))

    first = train(make_model(), data, quick(max_steps=12, out_dir=str(tmp_path), **schedule))
    torch.manual_seed(999)  # the global RNG moves on in between; the checkpoint must restore it
    model_b = make_model(seed=123)  # different initial weights: all must come from the checkpoint
    second = train(model_b, data, quick(max_steps=24, **schedule), resume=tmp_path)

    assert second.steps == list(range(12, 24))
    assert first.train_loss + second.train_loss == full.train_loss
    for (name, a), b in zip(model_a.state_dict().items(), model_b.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_bf16_autocast_on_cpu_learns_and_resumes_exactly(tmp_path):
    """precision="bf16" on a CPU: matrix products run in bfloat16, the loss falls, and resume is still exact."""
    data = make_data()
    schedule = dict(eval_interval=6, lr_decay_steps=24, precision="bf16")
    dtypes = set()
    model_a = make_model()
    model_a.mix.register_forward_hook(lambda module, args, out: dtypes.add(out.dtype))
    full = train(model_a, data, quick(max_steps=24, **schedule))
    assert dtypes == {torch.bfloat16}  # autocast is on, in training and in evaluation
    assert all(math.isfinite(x) for x in full.train_loss + full.val_loss)
    assert full.val_loss[-1] < full.val_loss[0] - 1.0 and sum(full.train_loss[-6:]) < sum(full.train_loss[:6])

    first = train(make_model(), data, quick(max_steps=12, out_dir=str(tmp_path), **schedule))
    torch.manual_seed(999)
    model_b = make_model(seed=123)
    second = train(model_b, data, quick(max_steps=24, **schedule), resume=tmp_path)
    assert second.steps == list(range(12, 24))
    assert first.train_loss + second.train_loss == full.train_loss  # measured: bit for bit on CPU, bf16 included
    for (name, a), b in zip(model_a.state_dict().items(), model_b.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_grad_accumulation_equals_the_big_batch():
    data = make_data()
    cfg = quick(batch_size=3, grad_accum_steps=2)
    trainer = Trainer(make_model(dropout=0.0), data, cfg)
    trainer.backward()
    got = {n: p.grad.clone() for n, p in trainer.raw_model.named_parameters()}

    g = torch.Generator().manual_seed(cfg.seed)  # replay the two micro-batches the trainer drew
    batches = [sample_lm_batch(data["train"], 3, cfg.block_size, g) for _ in range(2)]
    x, y = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
    reference = make_model(dropout=0.0)
    reference(x, y)[1].backward()
    for name, p in reference.named_parameters():
        torch.testing.assert_close(got[name], p.grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("overrides", "data_change", "message"),
    [
        (dict(batch_size=600), None, "batch_size=600 is larger than the 492 distinct windows"),
        (dict(block_size=32), None, "larger than the model's block_size=16"),
        (dict(block_size=17), None, "block_size=17 is larger than the model's block_size=16"),
        (dict(), "no_val", "data has no 'val' split"),
        (dict(block_size=8), "short", "too few for one window"),
        (dict(), "float", "1-D integer torch.Tensor"),
        (dict(), "big_id", r"data\['val'\] holds the id 13, outside the model's vocabulary \[0, 13\)"),
        (dict(), "tensor", "data must be a dict of splits"),
    ],
)
def test_bad_input_is_refused_before_any_work(overrides, data_change, message):
    data = make_data()
    if data_change == "tensor":
        data = data["train"]
    elif data_change == "big_id":  # one id past the vocabulary, late in the stream: no step may run first
        data["val"][-1] = 13
    elif data_change == "no_val":
        del data["val"]
    elif data_change == "short":
        data["val"] = data["val"][:5]
    elif data_change == "float":
        data["train"] = data["train"].float()
    with pytest.raises((ValueError, TypeError), match=message):
        Trainer(make_model(), data, quick(**overrides))


def example_data(n: int = 64, block: int = 16) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Fixed-length examples: copy the first half of each row, with the loss only on the second half."""
    g = torch.Generator().manual_seed(3)
    half = torch.randint(13, (n, block // 2), generator=g)
    rows = torch.cat([half, half, half[:, :1]], 1)  # (n, block + 1)
    targets = rows[:, 1:].clone()
    targets[:, : block // 2 - 1] = -100  # the first half is random: nothing to learn there
    return {"train": (rows[:, :-1], targets), "val": (rows[:, :-1], targets)}


def test_examples_train_on_whole_rows_with_ignored_targets():
    data = example_data()
    cfg = quick(max_steps=2, warmup_steps=1, eval_interval=0, batch_size=5, block_size=16)
    trainer = Trainer(make_model(dropout=0.0), data, cfg)
    x, y = trainer.batch("train")
    replay = sample_example_batch(data["train"], 5, torch.Generator().manual_seed(cfg.seed))
    assert torch.equal(x, replay[0]) and torch.equal(y, replay[1])
    rows = [i for i in range(64) if torch.equal(data["train"][0][i], x[0])]
    assert rows and torch.equal(data["train"][1][rows[0]], y[0])  # a row's targets travel with its inputs
    assert (y[:, :7] == -100).all() and (y[:, 7:] >= 0).all()

    history = train(make_model(dropout=0.0), data, quick(max_steps=60, eval_interval=30, batch_size=8, block_size=16))
    assert history.val_loss[-1] < history.val_loss[0] - 0.3  # learns to copy, judged on the answer half only


@pytest.mark.parametrize(
    ("change", "overrides", "message"),
    [
        ("one", dict(block_size=16), "a pair \\(inputs, targets\\)"),
        ("shapes", dict(block_size=16), r"inputs have shape \(64, 16\) but targets \(64, 15\)"),
        ("float", dict(block_size=16), r"data\['train'\]\[0\] \(inputs\) must be a 2-D \(N, T\) integer tensor"),
        (None, dict(block_size=8), "examples are 16 tokens long but TrainConfig.block_size=8"),
        (None, dict(block_size=16, batch_size=65), "batch_size=65 is larger than the 64 examples"),
        ("no_target", dict(block_size=16), "1 example\\(s\\) whose targets are all -100 \\(first: row 5\\)"),
        ("big_target", dict(block_size=16), "targets holds the id 13, .* \\[0, 13\\) \\(or -100"),
        ("negative_target", dict(block_size=16), "targets holds the id -1"),
        ("three", dict(block_size=16), r"must be a pair \(inputs, targets\) of \(N, T\) integer tensors, got 3 items"),
    ],
)
def test_bad_examples_are_refused(change, overrides, message):
    data = example_data()
    x, y = data["train"]
    no_target, big, negative = y.clone(), y.clone(), y.clone()
    no_target[5] = -100
    big[-1, -1], negative[0, -1] = 13, -1
    data["train"] = {
        "one": (x,),
        "shapes": (x, y[:, :-1]),
        "float": (x.float(), y),
        "no_target": (x, no_target),
        "big_target": (x, big),
        "negative_target": (x, negative),
        "three": (x, y, y),
    }.get(change, (x, y))
    with pytest.raises((ValueError, TypeError), match=message):
        Trainer(make_model(), data, quick(**overrides))


def test_a_list_of_token_ids_is_named_in_a_short_message():
    """A plain list of ids (what tokenizer.encode returns) once produced a message of 11 MB listing every int."""
    data = {"train": make_data()["train"].tolist() * 50}
    with pytest.raises(
        TypeError, match=r"data\['train'\] is a list of 100,000 ints; wrap it as torch.tensor\(ids\)"
    ) as err:
        Trainer(make_model(), data, quick(eval_interval=0))
    assert len(str(err.value)) < 200


def test_training_without_val_split_when_not_evaluating():
    data = make_data()
    del data["val"]
    history = train(make_model(), data, quick(max_steps=3, eval_interval=0))
    assert history.eval_steps == [] and len(history.train_loss) == 3


def test_resume_from_missing_path_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Trainer(make_model(), make_data(), quick(), resume=tmp_path / "nope")


def test_config_rejects_unknown_keys_and_bad_values():
    with pytest.raises(ValueError, match="unknown training config key 'learning_rte'; did you mean 'learning_rate'"):
        TrainConfig.from_dict({"learning_rte": 1e-3})
    assert TrainConfig.from_dict({"max_steps": 7, "warmup_steps": 2}).max_steps == 7
    with pytest.raises(ValueError, match=r"lr_decay_steps \(50\) must be at least warmup_steps \(100\)"):
        TrainConfig(warmup_steps=100, lr_decay_steps=50)
    with pytest.raises(ValueError, match=r"warmup_steps \(500\) is longer than the run \(max_steps=100\)"):
        TrainConfig(max_steps=100, warmup_steps=500)
    assert TrainConfig(max_steps=100, warmup_steps=150, lr_decay_steps=300).warmup_steps == 150  # a run to resume
    for lr in (0.0, -1e-3, math.nan):
        with pytest.raises(ValueError, match="learning_rate must be a positive number"):
            TrainConfig(learning_rate=lr, min_lr=0.0)
    with pytest.raises(ValueError, match="TrainConfig.batch_size must be a positive int"):
        TrainConfig(batch_size=0)
    with pytest.raises(ValueError, match="precision must be one of"):
        TrainConfig(precision="fp8")
    with pytest.raises(ValueError, match="min_lr"):
        TrainConfig(learning_rate=1e-4, min_lr=1e-3)
    with pytest.raises(ValueError, match="needs a CUDA device"):
        Trainer(make_model(), make_data(), quick(precision="fp16"))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("weight_decay", math.nan, "TrainConfig.weight_decay must be a number >= 0 .*, got nan"),
        ("weight_decay", -0.1, "TrainConfig.weight_decay must be a number >= 0 .*, got -0.1"),
        ("learning_rate", "3e-4", "TrainConfig.learning_rate must be a positive number, got '3e-4'"),
        ("learning_rate", math.inf, "TrainConfig.learning_rate must be a positive number, got inf"),
        ("min_lr", math.nan, r"TrainConfig.min_lr must be a number in \[0, learning_rate=0.001\], got nan"),
        ("grad_clip", "1.0", "TrainConfig.grad_clip must be a number >= 0 .*, got '1.0'"),
        ("grad_clip", math.inf, "TrainConfig.grad_clip must be a number >= 0 .*, got inf"),
        ("beta1", 1.5, r"TrainConfig.beta1 must be a number in \[0, 1\) .*, got 1.5"),
        ("beta2", 1.0, r"TrainConfig.beta2 must be a number in \[0, 1\) .*, got 1.0"),
        ("beta2", True, r"TrainConfig.beta2 must be a number in \[0, 1\) .*, got True"),
        ("warmup_steps", True, "TrainConfig.warmup_steps must be an int >= 0, got True"),
        ("eval_interval", 2.5, "TrainConfig.eval_interval must be an int >= 0, got 2.5"),
        ("lr_decay_steps", "50", "TrainConfig.lr_decay_steps must be a positive int or None, got '50'"),
        ("seed", "0", "TrainConfig.seed must be an int, got '0'"),
        ("compile", "False", "TrainConfig.compile must be True or False or None, got 'False'"),
        ("progress", None, "TrainConfig.progress must be True or False, got None"),
        ("out_dir", 3, "TrainConfig.out_dir must be a str or None, got 3"),
    ],
)
def test_config_refuses_wrong_types_and_non_finite_numbers(field, value, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{field: value})


def test_config_takes_a_path_and_a_torch_device_as_strings(tmp_path):
    """The checkpoint index stores the config as JSON, where a Path would fail at the first save, after training."""
    cfg = quick(max_steps=2, warmup_steps=1, eval_interval=0, out_dir=tmp_path / "out", device=torch.device("cpu"))
    assert cfg.out_dir == str(tmp_path / "out") and cfg.device == "cpu"
    train(make_model(), make_data(), cfg)
    assert checkpoint_info(tmp_path / "out")["train_config"]["out_dir"] == str(tmp_path / "out")


def write_config(tmp_path, **sections) -> str:
    path = tmp_path / "run.json"
    path.write_text(json.dumps(sections))
    return str(path)


def test_cli_trains_a_gpt_from_a_config_file(tmp_path, capsys):
    config = write_config(
        tmp_path,
        model={"block_size": 16, "n_layer": 1, "n_head": 2, "n_embd": 16},
        data={"dataset": "shakespeare", "size": "tiny"},
        train={
            "max_steps": 4,
            "batch_size": 2,
            "block_size": 16,
            "eval_interval": 2,
            "eval_batches": 1,
            "warmup_steps": 1,
            "device": "cpu",
            "progress": False,
        },
    )
    history = main(["--config", config, "--set", f"train.out_dir={json.dumps(str(tmp_path / 'out'))}"])
    assert len(history.train_loss) == 4 and history.eval_steps == [0, 2, 4]
    out = capsys.readouterr().out
    assert "step 4: train" in out and "done: 4 steps" in out
    assert checkpoint_info(tmp_path / "out")["model_config"]["vocab_size"] == 63  # from the character tokenizer
    assert (tmp_path / "out" / "tokenizer.json").is_file()
    resumed = main(["--config", config, "--set", "train.max_steps=6", "--resume", str(tmp_path / "out")])
    assert resumed.steps == [4, 5]


@pytest.mark.parametrize(
    ("sections", "overrides", "message"),
    [
        ({"train": {"max_step": 3}}, [], "unknown training config key 'max_step'; did you mean 'max_steps'"),
        ({"model": {"n_layers": 3}}, [], "unknown model config key 'n_layers'; did you mean 'n_layer'"),
        ({"optim": {}}, [], "unknown config section"),
        ({"model": {"vocab_size": 65}}, [], "vocab_size comes from the tokenizer"),
        ({}, ["model.n_embed=64"], "unknown model config key 'n_embed'; did you mean 'n_embd'"),
        ({"data": {"dataset": "wiki"}}, [], "not supported"),
        ({}, ["max_steps=3"], "must look like section.key=value"),
        ({}, ["model.bias=False"], r"'False'; write JSON: true/false/null \(model.bias=false\)"),
        ({}, ["train.compile=TRUE"], r"'TRUE'; write JSON: true/false/null \(train.compile=true\)"),
        ({}, ["train.out_dir=None"], r"'None'; write JSON: true/false/null \(train.out_dir=null\)"),
    ],
)
def test_cli_refuses_bad_configs(tmp_path, sections, overrides, message):
    config = write_config(tmp_path, **sections)
    with pytest.raises(ValueError, match=message):  # before any data is read or any model is built
        load_run_config(config, overrides)


def test_cli_overrides_parse_as_json(tmp_path):
    config = write_config(tmp_path, train={"compile": True})
    overrides = ["train.compile=false", "train.out_dir=null", "train.max_steps=5", 'data.size="None"', "data.size=tiny"]
    loaded = load_run_config(config, overrides[:4])
    assert loaded["train"] == {"compile": False, "out_dir": None, "max_steps": 5}
    assert loaded["data"] == {"size": "None"}  # quoted as JSON, the word itself is a string
    assert load_run_config(config, overrides[4:])["data"] == {"size": "tiny"}  # not JSON: stays a string


def test_cli_missing_config_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_run_config(tmp_path / "none.json")


def test_example_configs_are_valid():
    for path in sorted(Path(__file__).parent.parent.glob("configs/*.json")):
        config = load_run_config(path)
        TrainConfig.from_dict(config["train"])
        GPTConfig(**config["model"], vocab_size=65)


def test_live_loss_plot_redraws_the_history_after_each_evaluation():
    plot = LiveLossPlot(title="tiny")
    calls = []
    history = train(
        make_model(),
        make_data(),
        quick(max_steps=10, eval_interval=5),
        callback=lambda h: calls.append(plot(h) or [list(line.get_ydata()) for line in plot.ax.get_lines()]),
    )
    assert len(calls) == 3  # steps 0, 5 and 10
    per_step, eval_train, val = calls[-1]
    assert per_step == history.train_loss and eval_train == history.eval_train_loss and val == history.val_loss
    assert plot.ax.get_title() == "tiny" and len(calls[0]) == 2  # before any step: only the two eval curves


def test_a_fresh_run_never_overwrites_a_checkpoint(tmp_path):
    """A second run into the same out_dir without resume= stops before it can replace the first run's checkpoint."""
    train(make_model(), make_data(), quick(max_steps=4, eval_interval=0, out_dir=str(tmp_path)))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(FileExistsError, match=f"pass resume={str(tmp_path)!r} to continue"):
        train(
            make_model(seed=1), make_data(), quick(max_steps=2, warmup_steps=1, eval_interval=0, out_dir=str(tmp_path))
        )
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    resumed = train(
        make_model(), make_data(), quick(max_steps=6, eval_interval=0, out_dir=str(tmp_path)), resume=tmp_path
    )
    assert resumed.steps == [4, 5]


def test_gradients_are_clipped_before_the_step():
    """The optimizer must see a total gradient norm of at most grad_clip (the raw one here is far above it)."""
    trainer = Trainer(make_model(), make_data(), quick(grad_clip=0.05, eval_interval=0))

    def total_norm() -> float:
        return torch.stack([p.grad.norm() for p in trainer.raw_model.parameters()]).norm().item()

    norms = []
    trainer.optimizer.register_step_pre_hook(lambda *_: norms.append(total_norm()))
    trainer.backward()
    raw = total_norm()
    trainer.update()
    assert raw > 0.5 and norms[0] == pytest.approx(0.05, rel=1e-4)


def test_evaluate_is_the_mean_loss_over_the_same_fixed_batches():
    cfg = quick(eval_batches=3)
    trainer = Trainer(make_model(dropout=0.0), make_data(), cfg)
    losses = trainer.evaluate()
    for split in ("train", "val"):
        g = torch.Generator().manual_seed(cfg.seed + 1_000_003)  # the evaluation generator of rank 0
        with torch.no_grad():
            by_hand = [trainer.model(*trainer.batch(split, g))[1].item() for _ in range(3)]
        assert losses[split] == pytest.approx(sum(by_hand) / 3, rel=1e-6)
    assert trainer.evaluate() == losses  # and again the same batches


def test_periodic_checkpoints_fall_on_multiples_of_the_interval_and_at_the_end(tmp_path, monkeypatch):
    saved = []
    monkeypatch.setattr(Trainer, "save", lambda self, directory: saved.append(self.step))
    train(make_model(), make_data(), quick(max_steps=5, eval_interval=0, out_dir=str(tmp_path), checkpoint_interval=2))
    assert saved == [2, 4, 5]


def test_tokens_per_second_counts_every_micro_batch(monkeypatch):
    """With a clock that advances one second per step, tokens/s is the tokens of one optimizer step."""
    clock = iter(range(1000))
    monkeypatch.setattr(time, "perf_counter", lambda: next(clock) * 0.5)  # each call: half a second later
    cfg = quick(max_steps=3, eval_interval=0, grad_accum_steps=2)
    history = train(make_model(), make_data(), cfg)
    assert history.tokens_per_s == cfg.batch_size * cfg.block_size * 2 / 0.5  # t0 and the time after: 0.5 s a step


def test_a_model_that_returns_no_loss_is_named_at_the_first_step():
    """BERT's masked-LM head reads model(x, y) as (input_ids, attention_mask) and returns no loss."""

    class NoLoss(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.config, self.w = TinyConfig(), nn.Linear(2, 2)

        def forward(self, x, attention_mask=None):
            return x.float(), None

    with pytest.raises(TypeError, match="must return \\(logits, loss\\) with the loss a scalar tensor, got a NoneType"):
        train(NoLoss(), make_data(), quick(eval_interval=0))


@pytest.mark.parametrize("grad_accum_steps", [1, 2])
def test_a_diverging_run_stops_and_keeps_the_last_good_checkpoint(tmp_path, grad_accum_steps):
    """A learning rate of 1e4 sends the loss to NaN; the run must stop there, not save NaN weights over step 10."""
    train(make_model(), make_data(), quick(max_steps=10, eval_interval=0, out_dir=str(tmp_path), checkpoint_interval=5))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    wild = dict(learning_rate=1e4, min_lr=0.0, grad_clip=0.0, grad_accum_steps=grad_accum_steps)
    cfg = quick(max_steps=30, eval_interval=0, out_dir=str(tmp_path), checkpoint_interval=100, **wild)
    message = r"training loss became (nan|inf) at step \d+: the run diverged; lower learning_rate or turn on grad_clip"
    with pytest.raises(
        FloatingPointError, match=message + rf".* last checkpoint in {re.escape(str(tmp_path))} \(step 10\) was kept"
    ):
        train(make_model(), make_data(), cfg, resume=tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_gradients_left_on_the_model_never_reach_a_new_run():
    """A diverged or interrupted run leaves gradients behind; a rerun on the same model must not add them in."""
    model = make_model()
    for p in model.parameters():
        p.grad = torch.full_like(p, math.nan)
    history = train(model, make_data(), quick(max_steps=3, eval_interval=0))
    assert all(math.isfinite(loss) for loss in history.train_loss)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_config_numbers_may_be_numpy_scalars_and_are_stored_as_plain_ones():
    """A sweep over np.linspace hands NumPy scalars; the checkpoint index stores the config as JSON."""
    cfg = TrainConfig(learning_rate=np.float32(3e-4), seed=np.int64(3), beta2=np.float64(0.99), max_steps=1000)
    assert type(cfg.learning_rate) is float and type(cfg.seed) is int and type(cfg.beta2) is float
    assert json.loads(json.dumps(dataclasses.asdict(cfg)))["learning_rate"] == pytest.approx(3e-4)


def test_a_checkpoint_never_holds_nan_weights(tmp_path):
    """An update can turn the weights to NaN before any loss shows it, just before a save; save() refuses them."""
    train(make_model(), make_data(), quick(max_steps=4, eval_interval=0, out_dir=str(tmp_path)))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    trainer = Trainer(make_model(), make_data(), quick(max_steps=8, eval_interval=0, out_dir=str(tmp_path)), tmp_path)
    trainer.backward()
    trainer.update()
    with torch.no_grad():
        trainer.raw_model.mix.weight[0, 0] = math.inf
    message = r"the weights hold NaN or inf after step 5 \(first: mix.weight\): the run diverged; lower learning_rate"
    with pytest.raises(
        FloatingPointError, match=message + rf"\. The last checkpoint in {re.escape(str(tmp_path))} \(step 4\) was kept"
    ):
        trainer.save(tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_resuming_a_checkpoint_saved_by_hand_says_to_start_afresh(tmp_path):
    """save_checkpoint(dir, model, optimizer) holds no generator states: refused before any weight is loaded."""
    saved = make_model(seed=1)
    save_checkpoint(tmp_path, saved, configure_optimizer(saved, quick(), torch.device("cpu")), step=3)
    model = make_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    message = (
        r"has no trainer state \(random-generator states\): it was not written by train\(\).*"
        "load its weights with load_checkpoint and start a fresh run"
    )
    with pytest.raises(ValueError, match=message):
        Trainer(model, make_data(), quick(), resume=tmp_path)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
