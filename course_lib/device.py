"""Pick the accelerator a notebook runs on, so one notebook works on a laptop, Colab and a GPU box."""

from __future__ import annotations

import os
import platform

import torch

DEVICE_ENV = "COURSE_DEVICE"
_KNOWN = ("cuda", "mps", "cpu")


def get_device(prefer: str | None = None) -> torch.device:
    """Return CUDA if present, else Apple's MPS, else the CPU.

    ``prefer`` (or the ``COURSE_DEVICE`` environment variable) forces one, e.g. ``COURSE_DEVICE=cpu``
    to reproduce the stored outputs on a GPU machine. Asking for a device that is not there is an
    error rather than a silent fallback, because a learner who asked for the GPU wants to know.
    """
    choice = (prefer or os.environ.get(DEVICE_ENV, "")).strip().lower()
    if choice:
        kind = choice.split(":")[0]
        if kind not in _KNOWN:
            raise ValueError(
                f"unknown device {choice!r} (from {DEVICE_ENV} or prefer=); use one of {', '.join(_KNOWN)}"
            )
        if kind == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(
                f"device {choice!r} was requested but torch sees no CUDA GPU; unset {DEVICE_ENV} to use the CPU"
            )
        if kind == "mps" and not torch.backends.mps.is_available():
            raise RuntimeError(
                f"device {choice!r} was requested but MPS is not available; unset {DEVICE_ENV} to use the CPU"
            )
        return torch.device(choice)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def can_compile(device: torch.device | str | None = None) -> bool:
    """Whether ``torch.compile`` is worth trying here.

    Its Inductor backend needs a C++ toolchain and is unsupported on Windows and on MPS, where it
    fails at the first call with a long trace; training code asks this first and runs eagerly instead.
    """
    if platform.system() == "Windows" or not hasattr(torch, "compile"):
        return False
    kind = torch.device(device).type if device is not None else get_device().type
    return kind in ("cuda", "cpu")


def describe_device(device: torch.device | str) -> str:
    """A device in words for a run's provenance, e.g. ``"cuda: NVIDIA H100 80GB HBM3"`` or ``"cpu"``."""
    device = torch.device(device)
    return f"cuda: {torch.cuda.get_device_name(device)}" if device.type == "cuda" else device.type
