"""Build the Blender extension zip and install it (`acestep-dcc install blender`).

Standard library only. The zip holds the add-on (hosts/blender/acestep_blender) with
this acestep_core copied under `_vendor/` at build time, so Blender's own Python needs
nothing else and the repository keeps one copy of the core. The whole package is
copied, not only the modules Blender imports: a worker the add-on starts runs from
the same copy (the client puts it on the worker's PYTHONPATH), so host and worker
are always the same version. Blender itself only ever imports the stdlib-only part,
which `check_host_imports` verifies on every build.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import acestep_core
from acestep_core.client import default_worker_command

CORE_ROOT = Path(acestep_core.__file__).resolve().parent
REPO_ROOT = CORE_ROOT.parent
ADDON_SOURCE = REPO_ROOT / "hosts" / "blender" / "acestep_blender"
ADDON_PACKAGE = "acestep_blender"
VENDOR_FOLDER = "_vendor"
INSTALL_RECORD = "install.json"  # in VENDOR_FOLDER: {"worker_python": the Python that built the zip}
DEFAULT_ZIP_DIR = REPO_ROOT / "dist"
INSTALL_TIMEOUT_S = 300
# Fixed timestamps make the same sources give the same zip, byte for byte.
ZIP_DATE = (2024, 1, 1, 0, 0, 0)
SKIPPED_PARTS = {"__pycache__", ".pytest_cache", ".mypy_cache"}
SKIPPED_SUFFIXES = {".pyc", ".pyo", ".zip"}
MANUAL_STEPS = (
    "In Blender 4.2 or later: Edit > Preferences > Get Extensions, open the menu at the top right "
    "(the small arrow), choose Install from Disk... and pick {zip}. Or drag the zip into Blender's window."
)
WORKER_PYTHON_STEP = (
    "Then, in the add-on's preferences (Edit > Preferences > Add-ons > ACE-Step), set Worker Python to "
    "{python} so Blender can start the worker."
)


class ExtensionBuildError(acestep_core.AceStepError):
    """The extension cannot be built from these sources; the message says why and what to do."""


@dataclass
class BlenderInstallReport:
    zip_path: Path
    blender: str | None  # the executable used, None when none was found
    installed: bool
    output: str = ""  # the end of Blender's own output

    @property
    def next_steps(self) -> str:
        worker_step = WORKER_PYTHON_STEP.format(python=sys.executable)
        if self.installed:
            return ("Restart Blender (or open a new one); the ACE-Step tab is in the Video Sequencer's "
                    "sidebar (N). " + worker_step)
        return MANUAL_STEPS.format(zip=self.zip_path) + "\n" + worker_step

    def __str__(self) -> str:
        lines = [f"Built {self.zip_path}"]
        if self.installed:
            lines.append(f"Installed and enabled with {self.blender}")
        elif self.blender:
            lines.append(f"Installing with {self.blender} failed: {self.output.strip() or 'no output'}")
        else:
            lines.append("Blender is not on PATH (pass --blender to name it), so install it by hand:")
        lines.append(self.next_steps)
        return "\n".join(lines)


def build_extension_zip(dest_dir: str | Path | None = None) -> Path:
    """Build `acestep_blender-<version>.zip` in `dest_dir` (default: dist/ in the repository)
    and return its path. Raises ExtensionBuildError when the sources are missing or the
    add-on would import something Blender's Python does not have."""
    if not (ADDON_SOURCE / "__init__.py").is_file():
        raise ExtensionBuildError(
            f"the Blender add-on's sources are not at {ADDON_SOURCE}: this acestep_core was installed "
            "without them; run the command from a checkout of the acestep-dcc repository")
    manifest = _read_manifest(ADDON_SOURCE / "blender_manifest.toml")
    check_host_imports()
    dest = Path(dest_dir) if dest_dir is not None else DEFAULT_ZIP_DIR
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / f"{manifest['id']}-{manifest['version']}.zip"
    partial = target.with_name(f".{target.name}.partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in _files_under(ADDON_SOURCE):
            _add(archive, path, path.relative_to(ADDON_SOURCE).as_posix())
        for path in _files_under(CORE_ROOT):
            _add(archive, path, f"{VENDOR_FOLDER}/acestep_core/{path.relative_to(CORE_ROOT).as_posix()}")
        worker_python = installing_worker_python()
        if worker_python is not None:
            _add_text(archive, f"{VENDOR_FOLDER}/{INSTALL_RECORD}", json.dumps({"worker_python": worker_python}))
    partial.replace(target)
    return target


def installing_worker_python() -> str | None:
    """This Python when it can run the worker: the one the add-on should start, which the
    zip records so the add-on can name it when Worker Python is wrong."""
    return sys.executable if default_worker_command() is not None else None


def install_blender(blender_executable: str | None = None, zip_dir: str | Path | None = None) -> BlenderInstallReport:
    """Build the zip, then install and enable it with
    `blender --command extension install-file --repo user_default --enable <zip>`
    when a Blender executable is given or on PATH; otherwise say how to install by hand."""
    zip_path = build_extension_zip(zip_dir)
    blender = blender_executable or shutil.which("blender")
    if blender is None:
        return BlenderInstallReport(zip_path, None, installed=False)
    command = [str(blender), "--command", "extension", "install-file", "--repo", "user_default", "--enable",
               str(zip_path)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return BlenderInstallReport(zip_path, str(blender), installed=False, output=f"could not run Blender: {exc}")
    output = (done.stdout + done.stderr)[-2000:]
    return BlenderInstallReport(zip_path, str(blender), installed=done.returncode == 0, output=output)


# -- what goes in -------------------------------------------------------------------------


def host_import_closure(start: Path = ADDON_SOURCE) -> dict[str, set[str]]:
    """Every acestep_core module the add-on imports at module level, directly or through
    another core module, mapped to the top-level packages that module imports at its top
    level. (Imports inside functions run only when called: the core uses them to keep
    numpy and torch out of host Pythons.)"""
    pending = [m for path in _files_under(start) if path.suffix == ".py" for m in _core_imports(path)]
    closure: dict[str, set[str]] = {}
    while pending:
        module = pending.pop()
        if module in closure:
            continue
        path = _module_path(module)
        if path is None:
            continue
        tops = _top_level_imports(path)
        closure[module] = {name.split(".")[0] for name in tops}
        pending.extend(n for n in tops if n.startswith("acestep_core"))
        pending.extend(_parents(module))
    return closure


def check_host_imports() -> None:
    """Raise ExtensionBuildError when a core module Blender imports needs a non-stdlib package."""
    allowed = set(sys.stdlib_module_names) | {"acestep_core", "__future__"}
    for module, tops in sorted(host_import_closure().items()):
        foreign = sorted(tops - allowed)
        if foreign:
            raise ExtensionBuildError(
                f"{module} is imported by the Blender add-on but imports {', '.join(foreign)} at module level, "
                "which Blender's Python does not have; import it inside the function that needs it")


def _core_imports(path: Path) -> list[str]:
    return [n for n in _top_level_imports(path) if n.startswith("acestep_core")]


def _top_level_imports(path: Path) -> list[str]:
    """Module names imported by statements that run at import time (not inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    names: list[str] = []

    def visit(nodes):
        for node in nodes:
            if isinstance(node, ast.Import):
                names.extend(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.append(node.module)
                names.extend(f"{node.module}.{alias.name}" for alias in node.names
                             if _module_path(f"{node.module}.{alias.name}") is not None)
            elif isinstance(node, (ast.If, ast.Try, ast.With)):
                for field in ("body", "orelse", "finalbody", "handlers"):
                    visit(getattr(node, field, []) or [])
            elif isinstance(node, ast.ExceptHandler):
                visit(node.body)

    visit(tree.body)
    return names


def _module_path(module: str) -> Path | None:
    if module != "acestep_core" and not module.startswith("acestep_core."):
        return None
    parts = module.split(".")[1:]
    base = CORE_ROOT.joinpath(*parts)
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _read_manifest(path: Path) -> dict:
    try:
        manifest = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ExtensionBuildError(f"cannot read {path}: {exc}; restore it from the repository") from None
    for key in ("id", "version"):
        if not manifest.get(key):
            raise ExtensionBuildError(f"{path} has no {key!r}; restore it from the repository")
    return manifest


def _files_under(root: Path) -> list[Path]:
    return sorted(
        p for p in root.rglob("*")
        if p.is_file() and not SKIPPED_PARTS.intersection(p.relative_to(root).parts)
        and p.suffix not in SKIPPED_SUFFIXES and not p.name.startswith(".")
    )


def _add(archive: zipfile.ZipFile, path: Path, name: str) -> None:
    _add_bytes(archive, name, path.read_bytes())


def _add_text(archive: zipfile.ZipFile, name: str, text: str) -> None:
    _add_bytes(archive, name, text.encode("utf-8"))


def _add_bytes(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    archive.writestr(info, data)
