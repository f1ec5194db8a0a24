"""Checks on the sizes and rates in the course's config dataclasses, shared by every model and the trainer.

A zero or negative size would otherwise build a model with empty layers or fail later inside torch, and a
dropout of 1 would silently zero every activation; each check names the field and the value it got.
"""

from __future__ import annotations

import math
import numbers


def check_positive_ints(config: object, names: tuple[str, ...], optional: bool = False) -> None:
    """Raise unless each named field of ``config`` is an int >= 1 (or None, where ``optional``)."""
    for name in names:
        check_positive_int(f"{type(config).__name__}.{name}", getattr(config, name), optional)


def check_positive_int(name: str, value: object, optional: bool = False) -> None:
    """Raise unless ``value`` is an int >= 1 (or None, where ``optional``); ``True`` is not a size."""
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int{' or None' if optional else ''}, got {value!r}")


def check_positive_real(name: str, value: object) -> float:
    """``value`` as a float, after checking it is a finite number > 0 (a NumPy scalar is fine, ``True`` is not)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < math.inf:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def check_probability(config: object, name: str) -> None:
    """Raise unless the dropout probability ``config.name`` lies in [0, 1)."""
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"{type(config).__name__}.{name} is a dropout probability in [0, 1), got {value!r}")
