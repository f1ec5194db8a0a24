"""The course as a learner meets it: JupyterLab started by the README's command, driven in a real browser.

The test starts ``make lab`` (headless, a free localhost port, a random token, and its own Jupyter
config, data, runtime, settings and workspace folders, so it touches nothing of the user's), opens
``start_here.ipynb`` in Debian's Chromium through Playwright, runs all cells from the Run menu, checks
that no cell shows an error or stderr, moves the temperature slider with the keyboard and checks that
the label it drives now shows the probabilities for the new temperature. Screenshots go to
``artifacts/browser/`` (git-ignored) so a failed CI run can be looked at.

Nothing is downloaded: Playwright launches the system Chromium (``make test`` installs it when it is
missing and apt-get may be used), with background networking off and JupyterLab's news fetch off.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts" / "browser"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI containers run as root, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
NOTEBOOK = "start_here.ipynb"
TIMEOUT_MS = 120_000  # generous: the first kernel start on a busy 2-core CI machine is slow
# JupyterLab settings for the test's own settings folder: no network, no autosave (the test must not
# rewrite the committed notebook), every cell attached to the page so the test can see all of them.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}


def playwright_api():
    """Playwright's sync API, or a failure that says how to install what is missing."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the browser test needs Playwright: `.venv/bin/pip install -e '.[dev]'` (or `make test`)")
    if not CHROMIUM.is_file():
        pytest.fail(
            f"the browser test drives Debian's Chromium at {CHROMIUM}, which is missing: "
            "`sudo apt-get update && sudo apt-get install -y chromium` (`make test` does it when run as root)"
        )
    return sync_playwright


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, server: subprocess.Popen, timeout_s: float = 180) -> None:
    """Poll the server's status API until it answers; fail with its log if it dies first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"`make lab` exited with {server.returncode}:\n{server.stdout.read()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"JupyterLab did not answer {url} within {timeout_s} s")


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Iterator[str]:
    """JupyterLab on chapters/, started exactly as the README says; yields its base URL with the token."""
    home = tmp_path_factory.mktemp("jupyter")
    dirs = {name: home / name for name in ("config", "data", "runtime", "settings", "workspaces", "checkpoints")}
    for folder in dirs.values():
        folder.mkdir()
    for plugin, values in LAB_SETTINGS.items():
        path = dirs["settings"] / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port, token = free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(dirs["config"]),
        "JUPYTER_DATA_DIR": str(dirs["data"]),
        "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
        "JUPYTERLAB_SETTINGS_DIR": str(dirs["settings"]),
        "JUPYTERLAB_WORKSPACES_DIR": str(dirs["workspaces"]),
        "IPYTHONDIR": str(home / "ipython"),
        "COURSE_DEVICE": "cpu",
    }
    lab_args = (
        f"--no-browser --ServerApp.ip=127.0.0.1 --ServerApp.port={port} --ServerApp.port_retries=0 "
        f"--IdentityProvider.token={token} --FileCheckpoints.checkpoint_dir={dirs['checkpoints']}"
    )
    server = subprocess.Popen(
        ["make", "--no-print-directory", "lab", f"LAB_ARGS={lab_args}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, so make and jupyter stop together
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base}/api/status?token={token}", server)
        yield f"{base}/lab/tree/{NOTEBOOK}?reset&token={token}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def expected_label(temperature: float) -> str:
    """What start_here's slider callback must print, computed here independently of the kernel."""
    import torch

    probs = torch.softmax(torch.tensor([2.0, 1.0, 0.5, -1.0]) / temperature, dim=0)
    return f"temperature {temperature:.1f} -> {[round(p, 3) for p in probs.tolist()]}"


@pytest.mark.slow
def test_start_here_runs_in_jupyterlab_and_its_widget_responds(lab):
    sync_playwright = playwright_api()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    committed = (ROOT / "chapters" / NOTEBOOK).read_bytes()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(TIMEOUT_MS)
        try:
            page.goto(lab)
            notebook = page.locator(".jp-NotebookPanel:visible .jp-Notebook")
            notebook.wait_for()
            idle = page.locator(".jp-StatusBar-Widget", has_text=re.compile(r"\| Idle"))
            idle.first.wait_for()
            page.screenshot(path=ARTIFACTS / "1_opened.png")

            page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
            page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()
            code_cells = notebook.locator(".jp-CodeCell")
            n_code = code_cells.count()
            assert n_code >= 3, f"expected start_here's code cells, found {n_code}"
            page.wait_for_function(  # every code cell has run: its prompt went from [ ] through [*] to [n]
                """n => {
                    const cells = document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell');
                    const prompts = [...cells].map(c => c.querySelector('.jp-InputPrompt').textContent.trim());
                    return prompts.length === n && prompts.every(p => /^\\[\\d+\\]:$/.test(p));
                }""",
                arg=n_code,
            )
            idle.first.wait_for()
            prompts = [t.strip() for t in notebook.locator(".jp-CodeCell .jp-InputPrompt").all_text_contents()]
            assert prompts == [f"[{i}]:" for i in range(1, n_code + 1)], prompts
            page.screenshot(path=ARTIFACTS / "2_ran_all.png", full_page=True)

            outputs = notebook.locator(".jp-OutputArea-output")
            problems = outputs.locator("xpath=self::*[@data-mime-type='application/vnd.jupyter.stderr']")
            assert problems.count() == 0, f"cells show errors or stderr: {problems.all_text_contents()}"
            stdout = " ".join(
                outputs.locator("xpath=self::*[@data-mime-type='application/vnd.jupyter.stdout']").all_text_contents()
            )
            assert "course_lib 0.1.0 on cpu" in stdout, stdout

            last = code_cells.nth(n_code - 1)
            label = last.locator("div.widget-label")  # the Label widget, not the slider's description
            handle = last.locator(".widget-slider .noUi-handle")
            assert label.inner_text() == expected_label(1.0)
            handle.focus()
            handle.press("ArrowRight")
            page.wait_for_function(
                "el => el.textContent.startsWith('temperature 1.1')", arg=label.element_handle(), timeout=30_000
            )
            assert label.inner_text() == expected_label(1.1)
            last.scroll_into_view_if_needed()
            page.screenshot(path=ARTIFACTS / "3_slider_moved.png")
        finally:
            page.screenshot(path=ARTIFACTS / "last.png")
            browser.close()
    assert (ROOT / "chapters" / NOTEBOOK).read_bytes() == committed, "the browser run rewrote the notebook"
