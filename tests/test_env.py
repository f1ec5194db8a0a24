"""The set-up every notebook calls: device choice, seeding and the library-version check."""

import random

import numpy as np
import pytest
import torch

import course_lib
from course_lib import can_compile, check_version, get_device, seed_everything, setup_notebook
from course_lib.device import describe_device


@pytest.mark.parametrize(
    "cuda,mps,expected", [(True, True, "cuda"), (True, False, "cuda"), (False, True, "mps"), (False, False, "cpu")]
)
def test_get_device_prefers_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert get_device() == torch.device(expected)


def test_get_device_honours_environment(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # COURSE_DEVICE wins over a present GPU
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")
    monkeypatch.setenv("COURSE_DEVICE", " CUDA:1 ")
    assert get_device() == torch.device("cuda:1")
    assert get_device("cpu") == torch.device("cpu"), "prefer= wins over the environment"


def test_get_device_rejects_unknown_and_missing(monkeypatch):
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        get_device("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        get_device("cuda")
    with pytest.raises(RuntimeError, match="MPS is not available"):
        get_device("mps")


def test_describe_device_names_the_gpu(monkeypatch):
    assert describe_device("cpu") == "cpu"
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 80GB HBM3")
    assert describe_device("cuda:0") == "cuda: NVIDIA H100 80GB HBM3"


def test_can_compile_is_false_on_windows(monkeypatch):
    monkeypatch.setattr("platform.system", lambda: "Windows")
    assert can_compile("cpu") is False
    monkeypatch.setattr("platform.system", lambda: "Linux")
    assert can_compile("cpu") is True


def test_seed_everything_repeats_every_generator():
    seed_everything(123)
    first = (random.random(), np.random.rand(3), torch.rand(3))
    seed_everything(123)
    second = (random.random(), np.random.rand(3), torch.rand(3))
    assert first[0] == second[0], "Python's random module"
    assert np.array_equal(first[1], second[1]) and torch.equal(first[2], second[2])


def test_check_version_accepts_patch_and_names_the_fix():
    major_minor = ".".join(course_lib.__version__.split(".")[:2])
    check_version(major_minor + ".99")
    with pytest.raises(RuntimeError, match=r"written for course_lib 0\.0\.1.*git pull"):
        check_version("0.0.1")


@pytest.fixture
def keep_threads():
    """setup_notebook sets torch's thread count for the whole process: give the other tests theirs back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_setup_notebook_fixes_threads_and_seed(keep_threads):
    device = setup_notebook(course_lib.__version__, seed=7, threads=1)
    assert torch.get_num_threads() == 1 and isinstance(device, torch.device)
    value = torch.rand(1)
    setup_notebook(course_lib.__version__, seed=7, threads=1)
    assert torch.equal(torch.rand(1), value)
