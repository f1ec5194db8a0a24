"""Build a static, readable website of the course from the notebooks and their stored outputs.

Run ``make site`` (or ``python scripts/build_site.py [--out DIR]``); open ``_site/index.html``. Nothing
is re-executed: nbconvert renders each notebook as committed, so the site shows exactly the outputs
the tests check, and building it takes seconds. Figures are embedded in the pages (stored plots are
already PNG data; images a markdown cell links to are inlined), so the site is a folder of
self-contained pages that can be served by anything or opened from disk.

The site mirrors ``chapters/``: ``chapters/02_x.ipynb`` becomes ``02_x.html`` and a link between two
notebooks keeps working once ``.ipynb`` becomes ``.html``. A link to a file outside ``chapters/``
(``../data/README.md``) points at the repository on GitHub instead.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

from badges import BRANCH, ROOT, notebooks, repository, title
from nbconvert import HTMLExporter
from nbformat import reads

CHAPTERS = ROOT / "chapters"
LINK = re.compile(r'\b(href|src)="([^"]*)"')
NAV_STYLE = (
    "<style>.course-nav{display:flex;gap:2em;padding:.6em 1.2em;background:#f4f4f4;border-bottom:1px solid #ddd;"
    "font-family:sans-serif;font-size:14px}.course-nav a{text-decoration:none}</style>"
)


def page_path(notebook: Path) -> str:
    """Where a notebook's page lives in the site, relative to its root: ``solutions/02_x_solutions.html``."""
    return notebook.relative_to(CHAPTERS).with_suffix(".html").as_posix()


def relative(target: str, from_page: str) -> str:
    """The relative URL from page ``from_page`` to ``target`` (both relative to the site's root)."""
    depth = from_page.count("/")
    return "../" * depth + target


def rewrite_link(value: str, notebook: Path, repo_url: str) -> str:
    """A link as the site needs it: notebooks become pages, files outside chapters/ point at GitHub."""
    parts = urlsplit(html.unescape(value))
    if parts.scheme or parts.netloc or not parts.path:  # external, data:, mailto:, or a #fragment on this page
        return value
    target = (notebook.parent / unquote(parts.path)).resolve()
    fragment = f"#{parts.fragment}" if parts.fragment else ""
    if target.suffix == ".ipynb" and target.is_relative_to(CHAPTERS):
        return html.escape(relative(page_path(target), page_path(notebook)) + fragment)
    if target.is_relative_to(CHAPTERS):  # a file beside the notebooks: the build copies it
        return value
    if target.is_relative_to(ROOT):
        kind = "tree" if target.is_dir() else "blob"
        return html.escape(f"{repo_url}/{kind}/{BRANCH}/{target.relative_to(ROOT).as_posix()}{fragment}")
    raise SystemExit(f"{notebook.relative_to(ROOT)}: link {value!r} points outside the repository")


def nav(notebook: Path, order: list[Path]) -> str:
    """A bar at the top of each page: the index, and the previous and next page in reading order."""
    here = page_path(notebook)
    i = order.index(notebook)
    links = [f'<a href="{relative("index.html", here)}">&#8962; All chapters</a>']
    if i > 0:
        links.append(
            f'<a href="{relative(page_path(order[i - 1]), here)}">&larr; {html.escape(title_of(order[i - 1]))}</a>'
        )
    if i + 1 < len(order):
        links.append(
            f'<a href="{relative(page_path(order[i + 1]), here)}">{html.escape(title_of(order[i + 1]))} &rarr;</a>'
        )
    return f'{NAV_STYLE}<nav class="course-nav">{"".join(links)}</nav>'


def title_of(notebook: Path) -> str:
    return title(json.loads(notebook.read_text(encoding="utf-8")))


def render(notebook: Path, order: list[Path], repo_url: str) -> str:
    """One notebook as a complete HTML page, from its stored outputs."""
    exporter = HTMLExporter(template_name="lab", embed_images=True)
    nb = reads(notebook.read_text(encoding="utf-8"), as_version=4)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"path": str(notebook.parent)}})
    body = LINK.sub(lambda m: f'{m.group(1)}="{rewrite_link(m.group(2), notebook, repo_url)}"', body)
    return re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + nav(notebook, order), body, count=1)


def index_page(chapters: list[Path], solutions: list[Path], repo_url: str) -> str:
    """The site's front page: the course's title and description, then every chapter and solution."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    heading = readme.splitlines()[0].lstrip("# ").strip()
    intro = readme.split("\n\n")[1].strip()

    def items(paths: list[Path]) -> str:
        return "\n".join(f'<li><a href="{page_path(p)}">{html.escape(title_of(p))}</a></li>' for p in paths)

    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(heading)}</title>
<style>body{{max-width:46em;margin:2em auto;padding:0 1em;font-family:sans-serif;line-height:1.5}}</style>
</head><body>
<h1>{html.escape(heading)}</h1>
<p>{html.escape(intro)}</p>
<p>This site shows each notebook with the outputs stored in the repository. To run them, clone
<a href="{repo_url}">the repository</a> and follow its README, or use a chapter's Binder or Colab badge.</p>
<h2>Chapters</h2>
<ol>
{items(chapters)}
</ol>
<h2>Worked solutions</h2>
<ul>
{items(solutions) or "<li>none yet</li>"}
</ul>
</body></html>
"""


def build(out: Path) -> list[Path]:
    """Write the whole site into ``out`` (replacing it) and return the notebooks it holds."""
    _, repo_url = repository()
    found = notebooks()
    solutions = [p for p in found if "solutions" in p.relative_to(CHAPTERS).parts]
    chapters = [p for p in found if p not in solutions]
    chapters.sort(key=lambda p: (p.name != "start_here.ipynb", p.name))  # start here, then by number
    order = chapters + solutions
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for asset in CHAPTERS.rglob("*"):  # files the notebooks link to (data files, pictures) travel along
        rel = asset.relative_to(CHAPTERS)
        hidden = any(part.startswith((".", "__")) for part in rel.parts)  # checkpoints, caches, dotfiles
        if asset.is_file() and asset.suffix != ".ipynb" and not hidden:
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(asset, out / rel)
    for notebook in order:
        page = out / page_path(notebook)
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(render(notebook, order, repo_url), encoding="utf-8")
    (out / "index.html").write_text(index_page(chapters, solutions, repo_url), encoding="utf-8")
    return order


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "_site", help="folder to write (replaced); default _site/")
    args = parser.parse_args(argv)
    pages = build(args.out.resolve())
    print(f"site: {len(pages)} notebook pages and index.html in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
