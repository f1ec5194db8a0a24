"""Launch links and the Colab set-up cell stay in step with the one repository URL in pyproject.toml."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_badges_are_up_to_date():
    run = subprocess.run([sys.executable, "scripts/badges.py", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_every_notebook_has_launch_links_and_colab_cell():
    url = next(line for line in (ROOT / "pyproject.toml").read_text().splitlines() if line.startswith("Repository"))
    slug = url.split("github.com/")[1].strip('"')
    for path in (ROOT / "chapters").rglob("*.ipynb"):
        cells = json.loads(path.read_text())["cells"]
        head, colab = "".join(cells[0]["source"]), "".join(cells[1]["source"])
        rel = path.relative_to(ROOT).as_posix()
        assert f"colab.research.google.com/github/{slug}/blob/main/{rel}" in head, path
        assert f"mybinder.org/v2/gh/{slug}/main?labpath={rel.replace('/', '%2F')}" in head, path
        assert '"google.colab" in sys.modules' in colab and slug in colab, path
