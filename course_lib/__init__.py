"""course_lib: the library the course's notebooks build step by step, check against, then use.

Each notebook builds an idea inline on a tiny example, asserts that the function here computes
the same thing, and then relies on this library for the heavy lifting.
"""

__version__ = "0.1.0"

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for editors and type checkers; at run time these load on first use, below
    from course_lib.bert import (
        BertConfig,
        BertForMaskedLM,
        BertForSequenceClassification,
        BertForTokenClassification,
        BertModel,
    )
    from course_lib.device import can_compile, get_device
    from course_lib.env import check_version, seed_everything, setup_notebook
    from course_lib.gpt import GPT, GPTConfig

# Loaded on first use (PEP 562), not here, so that `import course_lib` works without PyTorch and
# `python -m course_lib.doctor` can say that torch is missing instead of dying of it. Keep torch
# imports out of this file (tests/test_doctor.py checks it).
_LAZY = {
    "can_compile": "course_lib.device",
    "get_device": "course_lib.device",
    "check_version": "course_lib.env",
    "seed_everything": "course_lib.env",
    "setup_notebook": "course_lib.env",
    "GPT": "course_lib.gpt",
    "GPTConfig": "course_lib.gpt",
    "BertConfig": "course_lib.bert",
    "BertModel": "course_lib.bert",
    "BertForMaskedLM": "course_lib.bert",
    "BertForSequenceClassification": "course_lib.bert",
    "BertForTokenClassification": "course_lib.bert",
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'course_lib' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value  # later look-ups skip this function
    return value


__all__ = [
    "BertConfig",
    "BertForMaskedLM",
    "BertForSequenceClassification",
    "BertForTokenClassification",
    "BertModel",
    "GPT",
    "GPTConfig",
    "__version__",
    "can_compile",
    "check_version",
    "get_device",
    "seed_everything",
    "setup_notebook",
]
