"""``binder/`` alone builds an environment in which a notebook reproduces its stored outputs.

Binder (repo2docker) reads ``runtime.txt`` for the Python version, installs ``requirements.txt`` and
runs ``postBuild``, all from the repository's root. This test does the same in a fresh virtual
environment, with one change forced by having no internet: the ``--extra-index-url`` line (PyTorch's
CPU wheel index) is dropped and pip's configured registry serves the same pinned versions. Then it
runs ``start_here.ipynb`` through nbval there, so a broken pin, a missing dependency or a postBuild
that no longer installs ``course_lib`` fails here rather than in front of a learner.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from worktree import copy_working_tree

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"


def binder_python() -> str:
    """An interpreter of the version ``runtime.txt`` asks for, or a failure saying which is needed."""
    text = (BINDER / "runtime.txt").read_text().strip()
    found = re.fullmatch(r"python-(\d+)\.(\d+)", text)
    assert found, f"binder/runtime.txt must read like python-3.11, not {text!r}"
    want = f"{found.group(1)}.{found.group(2)}"
    if sys.version_info[:2] == tuple(map(int, want.split("."))):
        return sys.executable
    other = shutil.which(f"python{want}")
    if other is None:
        pytest.fail(f"binder/runtime.txt asks for Python {want}; install python{want} to run this test")
    return other


def offline_requirements(dest: Path) -> Path:
    """binder/requirements.txt without its --extra-index-url line, beside it so ``-c ../`` still resolves."""
    lines = (BINDER / "requirements.txt").read_text().splitlines()
    kept = [line for line in lines if not line.strip().startswith("--extra-index-url")]
    assert len(kept) == len(lines) - 1, "expected exactly one --extra-index-url line in binder/requirements.txt"
    dest.write_text("\n".join(kept) + "\n")
    return dest


@pytest.mark.slow
def test_binder_environment_runs_start_here(tmp_path):
    repo = copy_working_tree(tmp_path / "repo")
    venv = tmp_path / "binder-env"
    subprocess.run([binder_python(), "-m", "venv", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "COURSE_DATA")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env['PATH']}", COURSE_DEVICE="cpu")

    def sh(*cmd: str) -> None:
        run = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=1200)
        assert run.returncode == 0, f"{' '.join(cmd)} failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"

    requirements = offline_requirements(repo / "binder" / "requirements.offline.txt")
    sh("python", "-m", "pip", "install", "--quiet", "-r", str(requirements))
    sh("bash", "binder/postBuild")
    # The test's own tools (not part of the Binder image), at the pinned versions.
    sh("python", "-m", "pip", "install", "--quiet", "-c", "constraints.txt", "pytest", "nbval")
    check = subprocess.run(
        ["python", "-c", "import course_lib, sys; print(course_lib.__file__); print(sys.prefix)"],
        cwd=tmp_path,  # away from the repository, so only the installed course can answer
        env=env,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr
    package, prefix = check.stdout.split()
    assert Path(package) == repo / "course_lib" / "__init__.py" and Path(prefix) == venv
    sh("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "chapters/start_here.ipynb")
