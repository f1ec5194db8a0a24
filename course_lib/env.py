"""One call at the top of every notebook: same numbers on every run, and the right library version."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

import course_lib
from course_lib.device import get_device

UPDATE_HINT = (
    "From the course folder run `git pull` and then `make lab` (or `pip install -e .` in your environment), "
    "and restart the kernel."
)


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and torch (all devices) so that a re-run draws the same random numbers."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def check_version(expected: str) -> None:
    """Fail early when the installed ``course_lib`` is not the release a notebook was written for.

    Notebooks and library move together; a notebook run against a newer or older library is the
    classic way course material breaks with a confusing error twenty cells later. Major and minor
    must match; patch releases only fix bugs and are accepted.
    """
    have = course_lib.__version__.split(".")[:2]
    want = expected.split(".")[:2]
    if have != want:
        raise RuntimeError(
            f"this notebook was written for course_lib {expected}, "
            f"but course_lib {course_lib.__version__} is installed. " + UPDATE_HINT
        )


def setup_notebook(version: str, seed: int = 0, threads: int = 2) -> torch.device:
    """Check the library version, seed every generator, fix torch's CPU threads, return the device.

    The thread count is fixed because a float reduction split over a different number of threads
    sums in a different order, and the stored outputs the tests compare against came from 2 threads.
    """
    check_version(version)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    torch.set_num_threads(threads)
    seed_everything(seed)
    return get_device()
