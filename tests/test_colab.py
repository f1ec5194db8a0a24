"""The Colab set-up cell: on (simulated) Colab it installs the course; anywhere else it does nothing.

Every notebook's second cell is written by ``scripts/badges.py``. Colab cannot run in CI, so the test
builds the parts of it the cell relies on: a ``google.colab`` module in ``sys.modules`` (how the cell
detects Colab), a Python environment of its own with the course's dependencies already there (Colab
ships torch, numpy and friends), a ``git`` that clones a local copy of this working tree when asked
for the repository's URL (through git's ``url.<base>.insteadOf``), and ``/content`` moved into a
temporary folder by rewriting that one path in the cell's text.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from worktree import copy_working_tree

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "chapters" / "start_here.ipynb"
FAKE_COLAB = """import sys, types
sys.modules["google"] = types.ModuleType("google")
sys.modules["google.colab"] = types.ModuleType("google.colab")
"""


def setup_cell() -> str:
    cell = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"][1]
    source = "".join(cell["source"])
    assert cell["cell_type"] == "code" and '"google.colab" in sys.modules' in source, "not the Colab set-up cell"
    return source


def repository_url() -> str:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    return next(line.split('"')[1] for line in text.splitlines() if line.startswith("Repository"))


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)


def local_repository(dest: Path) -> Path:
    """A git repository holding this working tree as a clone would see it once committed."""
    copy_working_tree(dest)
    git("init", "-q", "-b", "main", cwd=dest)
    git("add", "-A", cwd=dest)
    git("-c", "user.name=test", "-c", "user.email=test@example.invalid", "commit", "-q", "-m", "snapshot", cwd=dest)
    return dest


def colab_python(venv: Path) -> Path:
    """A fresh interpreter environment that already sees the course's dependencies, like Colab's."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # Appended after the environment's own packages; the course itself is NOT visible from here (the
    # current environment's editable install works through a .pth file, which this line does not run).
    Path(purelib, "preinstalled.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def run_python(python: Path, code: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([python, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_on_colab_the_cell_installs_the_course_and_its_data(tmp_path):
    origin = local_repository(tmp_path / "origin")
    content = tmp_path / "content"
    content.mkdir()
    python = colab_python(tmp_path / "colab-env")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "COURSE_DATA", "VIRTUAL_ENV")}
    env.update(
        GIT_CONFIG_COUNT="1",
        GIT_CONFIG_KEY_0=f"url.file://{origin}.insteadOf",
        GIT_CONFIG_VALUE_0=repository_url(),
        COURSE_DEVICE="cpu",
    )
    cell = setup_cell()
    cell = cell.replace('"/content/course', f'"{content}/course')
    assert "/content" not in cell.replace(str(content), ""), "the cell uses another /content path: extend this test"
    course = content / "course"

    notebook_session = f"""{FAKE_COLAB}
{cell}
import os, course_lib
from course_lib.data import data_dir, verify_data
print(os.getcwd())
print(course_lib.__file__)
print(data_dir())
failed = [(name, message) for name, ok, message in verify_data() if not ok]
assert not failed, failed
print(course_lib.setup_notebook("{__import__("course_lib").__version__}"))
"""
    run = run_python(python, notebook_session, cwd=content, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    cwd, package, data, device = run.stdout.splitlines()[-4:]
    assert Path(cwd) == course / "chapters"
    assert Path(package) == course / "course_lib" / "__init__.py"
    assert Path(data) == course / "data"
    assert device == "cpu"
    assert (course / ".git").is_dir() and (course / "chapters" / "start_here.ipynb").is_file()

    # After "Restart runtime" the clone is there, so the cell skips the install (which must carry the day)
    # but still moves into chapters/, so that relative paths in the notebook keep working.
    restarted = run_python(
        python,
        f"{FAKE_COLAB}\n{cell}\nimport os, course_lib\nprint(os.getcwd())\nprint(course_lib.__file__)",
        cwd=content,
        env=env,
    )
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    cwd, package = restarted.stdout.splitlines()[-2:]
    assert Path(cwd) == course / "chapters"
    assert Path(package) == course / "course_lib" / "__init__.py"


def test_outside_colab_the_cell_does_nothing_and_prints_nothing(tmp_path):
    probe = f"""import os, sys
before = (os.getcwd(), list(sys.path), set(sys.modules))
{setup_cell()}
after = (os.getcwd(), list(sys.path), set(sys.modules))
assert before[:2] == after[:2], (before[:2], after[:2])
assert not [m for m in after[2] - before[2] if m.startswith(("course_lib", "google"))]
"""
    run = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "" and run.stderr == ""
    assert list(tmp_path.iterdir()) == []  # nothing cloned or written


def test_every_notebook_carries_the_same_setup_cell():
    expected = setup_cell()
    for path in sorted((ROOT / "chapters").rglob("*.ipynb")):
        if ".ipynb_checkpoints" in path.parts:
            continue
        cell = json.loads(path.read_text(encoding="utf-8"))["cells"][1]
        assert "".join(cell["source"]) == expected, f"{path.relative_to(ROOT)}: run `python scripts/badges.py`"
        assert cell.get("outputs") == [], f"{path.relative_to(ROOT)}: the set-up cell printed something"
