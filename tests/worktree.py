"""Test helper: a copy of the repository as a fresh clone would hold it once the work is committed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def copy_working_tree(dest: Path) -> Path:
    """Copy tracked files and new files git does not ignore (so no .venv, caches or _site) into ``dest``.

    Tests of set-up paths (a fresh clone, Colab, Binder) use it rather than ``git clone``, so that they
    check the work in progress too, not only the last commit.
    """
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for rel in filter(None, listed):
        if (ROOT / rel).is_file():  # a deleted file is still listed by --cached until committed
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    return dest
