"""Checkpoints: exact round trips, no unpickling, refusals that name the difference, crash-safe writes."""

from __future__ import annotations

import json

import pytest
import safetensors.torch
import torch
from test_train import TinyLM, make_model

from course_lib.checkpoint import checkpoint_info, load_checkpoint, save_checkpoint, unwrap
from course_lib.train import TrainConfig, configure_optimizer


def trained(seed: int = 0, steps: int = 3, **overrides) -> tuple[TinyLM, torch.optim.Optimizer]:
    """A model and an AdamW with non-trivial moments, after a few steps on random tokens."""
    model = make_model(seed, **overrides)
    optimizer = configure_optimizer(model, TrainConfig(), torch.device("cpu"))
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randint(model.config.vocab_size, (2, 8), generator=g)
        model(x, x.roll(1, dims=1))[1].backward()
        optimizer.step()
        optimizer.zero_grad()
    return model, optimizer


def test_round_trip_restores_weights_optimizer_and_state(tmp_path):
    model, optimizer = trained()
    rng = torch.Generator().manual_seed(5).get_state()
    save_checkpoint(
        tmp_path, model, optimizer, step=3, train_config={"lr": 0.1}, state={"note": "x"}, tensors={"rng": rng}
    )

    fresh, fresh_opt = trained(seed=1, steps=1)
    ckpt = load_checkpoint(tmp_path, fresh, fresh_opt)
    assert ckpt.step == 3 and ckpt.train_config == {"lr": 0.1} and ckpt.state == {"note": "x"}
    assert ckpt.model_config == {"vocab_size": 13, "block_size": 16, "n_embd": 16, "dropout": 0.1}
    assert torch.equal(ckpt.tensors["rng"], rng)
    for (name, a), b in zip(model.state_dict().items(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert fresh.head.weight is fresh.wte.weight  # the tie survives loading
    saved, loaded = optimizer.state_dict(), fresh_opt.state_dict()
    assert saved["param_groups"] == loaded["param_groups"]
    for index, slots in saved["state"].items():
        for slot, value in slots.items():
            assert torch.equal(value, loaded["state"][index][slot]), (index, slot)


def test_files_are_safetensors_and_json_and_loading_never_unpickles(tmp_path, monkeypatch):
    model, optimizer = trained()
    save_checkpoint(tmp_path, model, optimizer, step=7)
    info = json.loads((tmp_path / "checkpoint.json").read_text())
    assert info["step"] == 7 and info["weights"] == "model-000007.safetensors"
    assert info["model_class"].endswith("TinyLM") and info["model_config"]["n_embd"] == 16
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint.json",
        "model-000007.safetensors",
        "trainer-000007.safetensors",
    ]
    weights = safetensors.torch.load_file(tmp_path / "model-000007.safetensors")
    assert torch.equal(weights["wpe.weight"], model.wpe.weight)

    def no_pickle(*args, **kwargs):
        raise AssertionError("checkpoint loading must not unpickle")

    monkeypatch.setattr(torch, "load", no_pickle)
    load_checkpoint(tmp_path, make_model(), configure_optimizer(make_model(), TrainConfig(), torch.device("cpu")))


def test_a_newer_save_replaces_the_older_files(tmp_path):
    model, optimizer = trained()
    save_checkpoint(tmp_path, model, optimizer, step=1)
    save_checkpoint(tmp_path, model, optimizer, step=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint.json",
        "model-000002.safetensors",
        "trainer-000002.safetensors",
    ]
    assert checkpoint_info(tmp_path)["step"] == 2


def test_an_interrupted_save_leaves_the_last_complete_checkpoint(tmp_path, monkeypatch):
    model, optimizer = trained(steps=1)
    save_checkpoint(tmp_path, model, optimizer, step=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    newer, newer_opt = trained(seed=3, steps=2)

    def killed(*args, **kwargs):  # Ctrl-C while the optimizer state is being written
        raise KeyboardInterrupt

    monkeypatch.setattr("course_lib.checkpoint.save_file", killed)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, newer, newer_opt, step=2)
    monkeypatch.undo()

    restored = make_model(seed=9)
    assert load_checkpoint(tmp_path, restored).step == 1
    for name, value in restored.state_dict().items():
        assert torch.equal(value, before[name]), name


def test_a_different_config_is_refused_and_named(tmp_path):
    model, _ = trained()
    save_checkpoint(tmp_path, model, step=0)
    with pytest.raises(ValueError, match=r"configs differ \(n_embd: checkpoint 16, model 32\)"):
        load_checkpoint(tmp_path, make_model(n_embd=32))


def test_a_different_architecture_is_refused_and_named(tmp_path):
    model, _ = trained()
    save_checkpoint(tmp_path, model, step=0)
    other = torch.nn.Sequential(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="holds a .*TinyLM, but the model is a torch.nn.modules.container.Sequential"):
        load_checkpoint(tmp_path, other)

    class Plain(torch.nn.Module):  # no config: the shapes and names are compared instead
        def __init__(self, width: int) -> None:
            super().__init__()
            self.a = torch.nn.Linear(width, 3)

    save_checkpoint(tmp_path / "plain", Plain(4))
    with pytest.raises(ValueError, match=r"a.weight is \(3, 4\) in the checkpoint but \(3, 5\) in the model"):
        load_checkpoint(tmp_path / "plain", Plain(5))


def test_weights_only_checkpoint_cannot_resume(tmp_path):
    model, optimizer = trained()
    save_checkpoint(tmp_path, model, step=0)
    assert load_checkpoint(tmp_path, make_model()).step == 0
    with pytest.raises(ValueError, match="weights only"):
        load_checkpoint(tmp_path, make_model(), optimizer)


def test_missing_checkpoint_says_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="the path does not exist"):
        load_checkpoint(tmp_path / "nowhere", make_model())
    with pytest.raises(FileNotFoundError, match="has no checkpoint.json"):
        checkpoint_info(tmp_path)
    (tmp_path / "model.pt").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="that is a file, not a checkpoint directory"):
        checkpoint_info(tmp_path / "model.pt")


def test_a_damaged_checkpoint_names_the_file_and_the_fix(tmp_path):
    model, optimizer = trained()
    index = save_checkpoint(tmp_path, model, optimizer, step=3)
    text = index.read_text()
    for damage, message in [
        (text[: len(text) // 2], "checkpoint.json is not valid JSON"),  # cut short
        ("[1, 2]", "holds a JSON list, not a checkpoint index"),
        (json.dumps({"format": 1, "step": 3}), r"lacks the entries \['model_class', 'weights', 'trainer'\]"),
    ]:
        index.write_text(damage)
        with pytest.raises(ValueError, match=message + ".*save it again, or point at another checkpoint"):
            load_checkpoint(tmp_path, make_model())
    index.write_text(text)
    for name in ("model-000003.safetensors", "trainer-000003.safetensors"):
        path = tmp_path / name
        good = path.read_bytes()
        path.write_bytes(good[: len(good) // 2])
        with pytest.raises(ValueError, match=f"checkpoint file .*{name}' is missing, truncated or corrupt"):
            load_checkpoint(
                tmp_path, make_model(), configure_optimizer(make_model(), TrainConfig(), torch.device("cpu"))
            )
        path.write_bytes(good)
    load_checkpoint(tmp_path, make_model())  # repaired, it loads again


def test_a_tensor_file_changed_after_saving_is_refused_by_its_sha256(tmp_path):
    model, optimizer = trained()
    index = save_checkpoint(tmp_path, model, optimizer, step=3)
    for name in ("model-000003.safetensors", "trainer-000003.safetensors"):
        path = tmp_path / name
        good = path.read_bytes()
        flipped = bytearray(good)
        flipped[-3] ^= 0x40  # one bit of the last tensor's data: safetensors alone would load the wrong number
        path.write_bytes(bytes(flipped))
        restored, restored_opt = (
            make_model(seed=5),
            configure_optimizer(make_model(), TrainConfig(), torch.device("cpu")),
        )
        before = {k: v.clone() for k, v in restored.state_dict().items()}
        with pytest.raises(ValueError, match=f"{name}' is missing, truncated or corrupt \\(its sha256 differs"):
            load_checkpoint(tmp_path, restored, restored_opt)
        assert all(torch.equal(v, before[k]) for k, v in restored.state_dict().items())  # nothing was copied
        path.write_bytes(good)
    # checkpoints saved before hashes were recorded (the shipped ones) load unchecked
    info = json.loads(index.read_text())
    del info["sha256"]
    index.write_text(json.dumps(info))
    weights = tmp_path / "model-000003.safetensors"
    flipped = bytearray(weights.read_bytes())
    flipped[-3] ^= 0x40
    weights.write_bytes(bytes(flipped))
    load_checkpoint(tmp_path, make_model())


def test_an_optimizer_built_another_way_is_refused_before_the_weights_change(tmp_path):
    model, optimizer = trained()
    save_checkpoint(tmp_path, model, optimizer, step=3)
    fresh = make_model(seed=1)
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    matrices = [p for p in fresh.parameters() if p.dim() >= 2]
    vectors = [p for p in fresh.parameters() if p.dim() < 2]
    moved = torch.optim.AdamW([{"params": matrices + vectors[:1]}, {"params": vectors[1:]}])  # one bias moved over
    with pytest.raises(ValueError, match="parameter groups differ"):
        load_checkpoint(tmp_path, fresh, moved)
    assert all(torch.equal(before[k], v) for k, v in fresh.state_dict().items())


def test_a_compiled_model_loads_its_plain_checkpoint(tmp_path):
    model, _ = trained()
    save_checkpoint(tmp_path, model, step=1)
    fresh = make_model(seed=1)
    load_checkpoint(tmp_path, torch.compile(fresh))  # no forward pass: nothing is compiled
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), fresh.state_dict().values(), strict=True))


def test_an_index_without_a_format_is_refused(tmp_path):
    model, _ = trained()
    index = save_checkpoint(tmp_path, model, step=1)
    info = json.loads(index.read_text())
    del info["format"]
    index.write_text(json.dumps(info))
    with pytest.raises(ValueError, match="checkpoint format None; this course_lib reads 1"):
        checkpoint_info(tmp_path)


def test_another_optimizers_state_is_refused(tmp_path):
    model, _ = trained()
    sgd = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.zeros(1, 4, dtype=torch.long), torch.zeros(1, 4, dtype=torch.long))[1].backward()
    sgd.step()
    save_checkpoint(tmp_path, model, sgd, step=1)
    adamw = torch.optim.AdamW(make_model().parameters())
    with pytest.raises(ValueError, match="holds SGD state, but this optimizer is AdamW"):
        load_checkpoint(tmp_path, make_model(), adamw)


def test_unwrap_sees_through_compile_and_ddp_wrappers():
    model = make_model()

    class Compiled(torch.nn.Module):  # what torch.compile returns keeps the model as _orig_mod
        def __init__(self, inner):
            super().__init__()
            self._orig_mod = inner

    assert unwrap(Compiled(model)) is model and unwrap(model) is model
    assert unwrap(torch.nn.Sequential(model)) is not model  # an ordinary container is not a wrapper
