"""The benchmark compares like with like: the same architecture in every implementation, and sane figures.

No timing is asserted (the machine decides those); the figures themselves go to benchmarks/README.md.
"""

from __future__ import annotations

import pytest
import torch

from course_lib.bench import (
    SIZES,
    Size,
    bench_size,
    builders,
    first_reaching,
    load_nanogpt,
    main,
    matmuls_only,
    print_table,
    rotated,
)

TINY = Size("tiny", n_layer=1, n_head=2, n_embd=16, block_size=8, batch_size=2)


def test_every_implementation_builds_the_same_model():
    nanogpt = load_nanogpt(None)  # $NANOGPT_DIR, when set, adds nanoGPT's model.py
    for size in SIZES.values():
        counts = {name: sum(p.numel() for p in build(size, size.block_size).parameters())
                  for name, build in builders(nanogpt).items()}  # fmt: skip
        assert len(set(counts.values())) == 1, counts
    assert 10e6 < counts["ours"] < 11e6  # the "10m" size


def test_ours_and_hf_compute_the_same_loss_on_copied_weights():
    from course_lib.gpt import GPT

    hf = builders(None)["hf"](TINY, TINY.block_size)
    ours = GPT.from_hf(hf.hf)
    x = torch.randint(TINY.vocab_size, (2, 8))
    y = torch.roll(x, -1, dims=1)
    torch.testing.assert_close(ours(x, y)[1], hf(x, y)[1])
    assert torch.equal(ours.generate(x[:1, :1], 5, temperature=0), hf.generate_greedy(x[:1, :1], 5))


def test_every_implementation_takes_its_turn_first():
    names = ["ours", "hf", "nanogpt"]
    assert [rotated(names, k)[0] for k in range(4)] == ["ours", "hf", "nanogpt", "ours"]
    assert sorted(rotated(names, 2)) == sorted(names)


def test_the_race_reads_the_first_evaluation_at_or_below_the_target():
    points = [(100, 5.0, 9.0, 2.5), (200, 10.0, 19.0, 1.9), (300, 15.0, 29.0, 1.95), (400, 20.0, 39.0, 1.85)]
    assert first_reaching(points, 1.9) == points[1]  # at or below, and the first time, not the last
    assert first_reaching(points, 1.86) == points[3]
    assert first_reaching(points, 1.8) is None


def test_bench_size_reports_training_and_generation(capsys):
    rows = bench_size(TINY, builders(None), repeats=1, steps=2, new_tokens=4, peak=1e9)
    impls = {(r["what"], r["impl"]) for r in rows}
    assert impls == {("train", "ours"), ("train", "hf"), ("generate", "ours (KV cache)"),
                     ("generate", "ours (no cache)"), ("generate", "floor: matmuls only"),
                     ("generate", "hf (generate, KV cache)")}  # fmt: skip
    assert all(r["tokens_per_s"] > 0 for r in rows)
    assert all(0 < r["mfu"] for r in rows if r["what"] == "train")
    print_table(rows)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 + len(rows) and lines[1].split()[-2:] == ["1.00x", "1.00x"]


def test_the_decoding_floor_runs_every_linear_layer_once_per_token(monkeypatch):
    from course_lib.gpt import GPT

    model = builders(None)["ours"](TINY, TINY.block_size)
    calls = []
    real_linear = torch.nn.functional.linear
    monkeypatch.setattr(torch.nn.functional, "linear", lambda x, w, b=None: calls.append(w) or real_linear(x, w, b))
    out = matmuls_only(model, 3)
    linears = [m.weight for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert isinstance(model, GPT) and len(linears) == 4 * TINY.n_layer + 1  # q/k/v, out, two MLP, the head
    assert len(calls) == 3 * len(linears) and all(a is b for a, b in zip(calls, linears * 3, strict=True))
    assert out.shape == (1, 4)


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"unknown size\(s\) \['huge'\]"):
        main(["--sizes", "huge"])
    with pytest.raises(FileNotFoundError, match="has no model.py"):
        load_nanogpt(str(tmp_path))
