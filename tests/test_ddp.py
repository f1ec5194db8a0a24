"""DistributedDataParallel: two CPU processes (gloo) must take exactly the step one process takes on both batches."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file
from test_train import make_data, make_model

from course_lib.checkpoint import checkpoint_info
from course_lib.data import sample_lm_batch
from course_lib.train import TrainConfig, Trainer, configure_optimizer, lr_at

WORLD = 2
CONFIG = dict(max_steps=10, batch_size=3, block_size=8, warmup_steps=2, eval_interval=0, device="cpu", progress=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _one_ddp_step(rank: int, port: int, out_dir: str) -> None:
    """What torchrun does per process: set the rendezvous variables, then use the same Trainer as one process."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(WORLD),
        COURSE_DEVICE="cpu",
    )
    torch.set_num_threads(1)
    try:
        trainer = Trainer(make_model(dropout=0.0), make_data(), TrainConfig(**CONFIG))
        assert trainer.world_size == WORLD and trainer.rank == rank
        loss = trainer.backward()
        grads = {f"grad.{n}": p.grad.clone() for n, p in trainer.raw_model.named_parameters()}
        trainer.update()
        weights = {f"weight.{n}": p.detach().clone() for n, p in trainer.raw_model.named_parameters()}
        save_file(grads | weights | {"loss": torch.tensor(loss)}, os.path.join(out_dir, f"rank{rank}.safetensors"))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_processes_match_one_process_on_the_concatenated_batch(tmp_path):
    mp.spawn(_one_ddp_step, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    ranks = [load_file(tmp_path / f"rank{r}.safetensors") for r in range(WORLD)]

    # Each rank drew its own batch (generator seeded with seed + rank); one process sees both of them.
    cfg = TrainConfig(**CONFIG)
    data = make_data()
    batches = [
        sample_lm_batch(data["train"], cfg.batch_size, cfg.block_size, torch.Generator().manual_seed(cfg.seed + r))
        for r in range(WORLD)
    ]
    assert not torch.equal(batches[0][0], batches[1][0])
    x, y = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])

    model = make_model(dropout=0.0)
    optimizer = configure_optimizer(model, cfg, torch.device("cpu"))
    _, loss = model(x, y)
    loss.backward()
    for name, p in model.named_parameters():
        for r in range(WORLD):  # every rank holds the averaged gradient of the whole batch
            torch.testing.assert_close(ranks[r][f"grad.{name}"], p.grad, rtol=0, atol=1e-6)
    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    for group in optimizer.param_groups:
        group["lr"] = lr_at(0, cfg)
    optimizer.step()
    for name, p in model.named_parameters():
        for r in range(WORLD):
            torch.testing.assert_close(ranks[r][f"weight.{name}"], p.detach(), rtol=0, atol=1e-6)
    assert ranks[0]["loss"].item() == pytest.approx(loss.item(), abs=1e-6)  # the logged loss is the whole step's


@pytest.mark.slow
def test_the_command_line_runs_under_torchrun_and_resumes(tmp_path):
    """`torchrun --nproc_per_node=2 -m course_lib.train --config FILE`: two ranks, one checkpoint holding both
    ranks' generators, and a resumed run that continues from it."""
    out = tmp_path / "out"
    config = tmp_path / "run.json"
    config.write_text(json.dumps({
        "model": {"block_size": 16, "n_layer": 1, "n_head": 2, "n_embd": 16},
        "train": {"max_steps": 4, "batch_size": 2, "block_size": 16, "eval_interval": 2, "eval_batches": 1,
                  "warmup_steps": 1, "device": "cpu", "progress": False, "out_dir": str(out)},
    }))  # fmt: skip
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}"]
    env = os.environ | {"COURSE_DEVICE": "cpu", "OMP_NUM_THREADS": "1"}
    first = subprocess.run([*torchrun, "-m", "course_lib.train", "--config", str(config)],
                           env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.stdout.count("done: 4 steps") == 1  # only rank 0 reports
    info = checkpoint_info(out)
    assert info["step"] == 4 and info["state"]["world_size"] == 2
    states = load_file(out / info["trainer"])
    assert not torch.equal(states["trainer.rank0.batch"], states["trainer.rank1.batch"])  # ranks draw differently

    second = subprocess.run([*torchrun, "-m", "course_lib.train", "--config", str(config), "--set",
                             "train.max_steps=6", "--resume", str(out)],
                            env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert second.returncode == 0, second.stderr[-3000:]
    assert "done: 2 steps" in second.stdout and checkpoint_info(out)["step"] == 6

    alone = subprocess.run([sys.executable, "-m", "course_lib.train", "--config", str(config), "--set",
                            "train.max_steps=8", "--resume", str(out)],
                           env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert alone.returncode != 0 and "was written by 2 processes but this run has 1" in alone.stderr
