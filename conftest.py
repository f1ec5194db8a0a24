"""Say in pytest's header which vector code PyTorch runs, because nbval compares the notebooks' digits with ones
stored from AVX2 code: on an AVX-512 CPU without the pins that ``make test`` sets (see the Makefile), training
figures come out different in their last digits and those cells fail although nothing is wrong."""

from __future__ import annotations

import torch


def pytest_report_header() -> str:
    capability = torch.backends.cpu.get_cpu_capability()
    line = f"course: PyTorch CPU kernels use {capability}"
    if capability.startswith("AVX512"):
        line += "; notebook outputs were stored from AVX2 code, so run the notebooks with make test, which pins it"
    return line
