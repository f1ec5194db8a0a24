"""The static site (``make site``) has a page for every notebook, an index, its figures, no broken links."""

from __future__ import annotations

import json
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import build_site  # noqa: E402  (scripts/ is not a package)


class Page(HTMLParser):
    """The links, image sources and element ids of one HTML page."""

    def __init__(self, path: Path):
        super().__init__()
        self.links: list[str] = []
        self.images: list[str] = []
        self.ids: set[str] = set()
        self.feed(path.read_text(encoding="utf-8"))

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.ids.update(v for k, v in attrs.items() if k in ("id", "name") and v)
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag == "img":
            self.images.append(attrs.get("src") or "")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> tuple[Path, list[Path]]:
    """The site as `make site` builds it, and the notebooks that existed just before the build."""
    notebooks = sorted(p for p in (ROOT / "chapters").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    out = tmp_path_factory.mktemp("site") / "_site"
    run = subprocess.run(
        [sys.executable, "scripts/build_site.py", "--out", str(out)], cwd=ROOT, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return out, notebooks


@pytest.fixture(scope="module")
def pages(site) -> dict[Path, Page]:
    return {path: Page(path) for path in site[0].rglob("*.html")}


@pytest.mark.slow  # builds the whole site once for the module
def test_every_notebook_has_a_page_linked_from_the_index(site, pages):
    out, notebooks = site
    index = pages[out / "index.html"]
    for notebook in notebooks:
        page = build_site.page_path(notebook)
        assert (out / page).is_file(), page
        assert page in index.links, f"index.html does not link {page}"
        name = build_site.title_of(notebook)
        assert name.split(":")[0] in (out / page).read_text(encoding="utf-8"), name
    orphans = [p for p in pages if p.name != "index.html" and p.relative_to(out).as_posix() not in index.links]
    assert not orphans, f"pages the index does not link: {orphans}"


@pytest.mark.slow  # builds the whole site once for the module
def test_no_internal_link_or_image_is_broken(site, pages):
    out, notebooks = site
    checked = 0
    for path, page in pages.items():
        for url in page.links + page.images:
            parts = urlsplit(url)
            if parts.scheme or parts.netloc:  # external address or embedded data: not ours to check offline
                continue
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            where = f"{path.relative_to(out)} -> {url}"
            assert target.is_relative_to(out) and target.is_file(), f"broken link {where}"
            if parts.fragment and target.suffix == ".html":
                ids = pages[target].ids  # a browser tries the fragment as written, then percent-decoded
                assert parts.fragment in ids or unquote(parts.fragment) in ids, f"no anchor for {where}"
            checked += 1
    assert checked >= 2 * len(notebooks), f"only {checked} internal links: is the navigation missing?"


@pytest.mark.slow  # builds the whole site once for the module
def test_stored_figures_are_embedded(site, pages):
    out, notebooks = site
    for notebook in notebooks:
        nb = json.loads(notebook.read_text(encoding="utf-8"))
        figures = sum(
            "image/png" in output.get("data", {})
            for cell in nb["cells"]
            if cell["cell_type"] == "code"
            for output in cell["outputs"]
        )
        images = pages[out / build_site.page_path(notebook)].images
        embedded = [src for src in images if src.startswith("data:image/png;base64,") and len(src) > 100]
        assert len(embedded) >= figures, f"{notebook.name}: {figures} stored figures, {len(embedded)} on the page"


def test_links_are_rewritten_for_the_site():
    chapters = build_site.CHAPTERS
    here, solution = chapters / "02_x.ipynb", chapters / "solutions" / "02_x_solutions.ipynb"
    repo = "https://github.com/owner/name"
    assert build_site.rewrite_link("03_y.ipynb#Masking", here, repo) == "03_y.html#Masking"
    assert build_site.rewrite_link("solutions/02_x_solutions.ipynb", here, repo) == "solutions/02_x_solutions.html"
    assert build_site.rewrite_link("../02_x.ipynb", solution, repo) == "../02_x.html"
    assert build_site.rewrite_link("../data/README.md", here, repo) == f"{repo}/blob/main/data/README.md"
    assert build_site.rewrite_link("../course_lib", here, repo) == f"{repo}/tree/main/course_lib"
    for unchanged in ("https://arxiv.org/abs/1706.03762", "#Section", "data:image/png;base64,AAAA", "pic.png"):
        assert build_site.rewrite_link(unchanged, here, repo) == unchanged
    with pytest.raises(SystemExit, match="outside the repository"):
        build_site.rewrite_link("../../../../etc/passwd", here, repo)
