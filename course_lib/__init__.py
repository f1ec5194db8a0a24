"""course_lib: the library the course's notebooks build step by step, check against, then use.

Each notebook builds an idea inline on a tiny example, asserts that the function here computes
the same thing, and then relies on this library for the heavy lifting.
"""

__version__ = "0.1.0"

from course_lib.device import can_compile, get_device
from course_lib.env import check_version, seed_everything, setup_notebook

__all__ = [
    "__version__",
    "can_compile",
    "check_version",
    "get_device",
    "seed_everything",
    "setup_notebook",
]
