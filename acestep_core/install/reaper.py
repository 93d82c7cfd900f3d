"""`acestep-dcc install reaper`: put the ACE-Step actions into REAPER's Actions list.

Copies the action scripts to <resource>/Scripts/acestep-dcc/, with what they import
under lib/ (acestep_reaper, the stdlib-only modules of acestep_core it imports, and
python-reapy, so REAPER's Python needs nothing installed), writes lib/acestep-dcc.json with the command that
starts the worker (this Python), and registers each script in reaper-kb.ini:

    SCR 4 0 RS<40 hex> "ACE-Step: Generate at edit cursor" "acestep-dcc/ACE-Step - Generate at edit cursor.py"

(flags 4, section 0 = Main, the named command id without its "_", the name the
Action list shows, the path relative to Scripts/). A description that starts with
"Custom: " (what REAPER writes for a script loaded by hand) would be listed as
"Script: ACE-Step - ....py"; any other is listed as written, so the actions carry the
names the README uses. The id is a hash of the path, so reinstalling keeps toolbar
buttons and shortcuts working. A reinstall rewrites the lines of our scripts (an older
install's "Custom: " ones, or ones REAPER wrote for scripts loaded by hand, which keep
their id) where they stand, adds missing ones, and leaves every other line as it was;
a second run changes nothing. REAPER reads reaper-kb.ini at start and rewrites it
when it quits: install with REAPER closed, or restart it afterwards and load the
scripts by hand if they are missing (the report says how). Standard library only.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import acestep_core
from acestep_core.errors import AceStepError

FOLDER = "acestep-dcc"
KB_FLAGS = 4
MAIN_SECTION = 0
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")


class ReaperInstallError(AceStepError):
    """REAPER's resource folder or the files to install cannot be found or written."""


@dataclass
class ReaperInstallReport:
    resource_path: Path
    scripts_folder: Path
    scripts: list[Path]
    kb_path: Path
    kb_lines_added: list[str]
    kb_lines_present: list[str]
    worker_command: list[str]
    notes: list[str] = field(default_factory=list)
    kb_lines_replaced: list[str] = field(default_factory=list)  # the old lines, now rewritten

    def __str__(self) -> str:
        lines = [f"Installed {len(self.scripts)} REAPER actions in {self.scripts_folder}"]
        if self.kb_lines_added or self.kb_lines_replaced:
            lines.append(f"Registered them in {self.kb_path}:")
            lines += [f"  {line}" for line in self.kb_lines_added]
            if self.kb_lines_replaced:
                lines.append(f"  ({len(self.kb_lines_replaced)} older lines for them were rewritten)")
        else:
            lines.append(f"They were already registered in {self.kb_path}.")
        lines.append("The actions start the worker with: " + " ".join(self.worker_command))
        lines += self.notes
        lines.append("In REAPER: Actions > Show action list, search for 'ACE-Step'.")
        return "\n".join(lines)


# -- where things are ---------------------------------------------------------------------------


def default_resource_path() -> Path | None:
    """REAPER's resource folder for this user (the one with reaper.ini), if any."""
    if sys.platform == "win32":
        candidates = [Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming")) / "REAPER"]
    elif sys.platform == "darwin":
        candidates = [Path.home() / "Library" / "Application Support" / "REAPER"]
    else:
        candidates = [Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "REAPER"]
    for candidate in candidates:
        if (candidate / "reaper.ini").is_file():
            return candidate
    return None


def reaper_host_folder() -> Path:
    """hosts/reaper of this acestep-dcc (a checkout or an editable install)."""
    folder = Path(acestep_core.__file__).resolve().parent.parent / "hosts" / "reaper"
    if not (folder / "acestep_reaper").is_dir() or not (folder / "scripts").is_dir():
        raise ReaperInstallError(
            f"the REAPER actions are not next to this acestep_core ({folder} is missing); run the installer "
            "from a checkout of acestep-dcc (pip install -e .)")
    return folder


def script_files(host_folder: Path | None = None) -> list[Path]:
    return sorted((host_folder or reaper_host_folder()).joinpath("scripts").glob("ACE-Step - *.py"))


# -- reaper-kb.ini ---------------------------------------------------------------------------


def command_name(relative_path: str) -> str:
    """The named command id (without its "_") for a script path relative to Scripts/."""
    return "RS" + hashlib.sha1(relative_path.replace("\\", "/").encode("utf-8")).hexdigest()


def action_name(script_name: str) -> str:
    """The Action list name of a script: "ACE-Step - Score regions.py" -> "ACE-Step: Score regions"
    (a file name cannot hold the colon on Windows)."""
    stem = script_name[:-3] if script_name.endswith(".py") else script_name
    return stem.replace(" - ", ": ", 1)


def kb_line(relative_path: str, name: str | None = None, flags: int = KB_FLAGS, section: int = MAIN_SECTION) -> str:
    """The SCR line that lists a script (relative to Scripts/) under its action name."""
    relative = relative_path.replace("\\", "/")
    description = action_name(relative.rsplit("/", 1)[-1])
    return f'SCR {flags} {section} {name or command_name(relative)} "{description}" "{relative}"'


@dataclass
class _ScriptLine:
    flags: int
    section: int
    name: str  # the named command id without its "_"
    path: str  # relative to Scripts/ when inside it, with forward slashes


def _parse_kb_script_line(line: str, scripts_root: Path | None = None) -> _ScriptLine | None:
    """An SCR line's fields: `SCR <flags> <section> <id> "<description>" <path>` (the
    path quoted or bare, the last field); None for any other line."""
    match = _SCR_LINE.match(line.rstrip("\r\n"))
    if match is None:
        return None
    path = match["quoted"] if match["quoted"] is not None else match["bare"]
    path = path.replace("\\", "/")
    if scripts_root is not None and os.path.isabs(path):
        try:
            path = Path(path).relative_to(scripts_root).as_posix()
        except ValueError:
            pass
    return _ScriptLine(int(match["flags"]), int(match["section"]), match["name"].lstrip("_"), path)


_SCR_LINE = re.compile(r'^SCR\s+(?P<flags>\d+)\s+(?P<section>\d+)\s+(?P<name>\S+)\s+"[^"]*"\s+'
                       r'(?:"(?P<quoted>[^"]*)"|(?P<bare>.+?))\s*$')


def register_scripts(kb_path: Path, relative_paths: list[str]) -> tuple[list[str], list[str], list[str]]:
    """List each script under its action name in reaper-kb.ini: lines already right stay,
    our scripts' other lines are rewritten in place (keeping their id, flags and section),
    missing ones are added at the end; every other line is left alone. Returns (added,
    already right, replaced: the old lines)."""
    try:
        raw = kb_path.read_bytes().decode("utf-8", errors="surrogateescape")
    except FileNotFoundError:
        raw = ""
    newline = "\r\n" if "\r\n" in raw else "\n"  # REAPER on Windows writes CRLF
    lines = raw.splitlines()
    ours = {path.replace("\\", "/") for path in relative_paths}
    scripts_root = kb_path.parent / "Scripts"
    present, replaced, in_main = [], [], set()
    for number, line in enumerate(lines):
        entry = _parse_kb_script_line(line, scripts_root)
        if entry is None or entry.path not in ours:
            continue
        wanted = kb_line(entry.path, entry.name, entry.flags, entry.section)
        if entry.section == MAIN_SECTION:
            in_main.add(entry.path)
        if line == wanted:
            present.append(line)
        else:
            replaced.append(line)
            lines[number] = wanted
    added = [kb_line(path) for path in relative_paths if path.replace("\\", "/") not in in_main]
    if added or replaced:
        text = newline.join(lines + added) + newline
        partial = kb_path.with_name(f".{kb_path.name}.partial")
        try:
            partial.write_bytes(text.encode("utf-8", errors="surrogateescape"))
            os.replace(partial, kb_path)  # REAPER never reads half a file
        except OSError:
            partial.unlink(missing_ok=True)
            raise
    return added, present, replaced


# -- installing ------------------------------------------------------------------------------


def _library_path(path: Path, host: Path) -> str:
    """Where a library file goes under lib/: its path from the package root."""
    root = host if path.is_relative_to(host) else Path(acestep_core.__file__).resolve().parent.parent
    return path.relative_to(root).as_posix()


def _copy_package(source: Path, destination: Path) -> None:
    if destination.exists():
        shutil.rmtree(destination)
    shutil.copytree(source, destination, ignore=_IGNORED)


def install_reaper(resource_path: Path | None = None, *, worker_command: list[str] | None = None) -> ReaperInstallReport:
    """Copy the actions into REAPER's resource folder and register them; see the module doc."""
    resource = Path(resource_path).expanduser() if resource_path else default_resource_path()
    if resource is None:
        raise ReaperInstallError(
            "REAPER's resource folder was not found; pass it with --resource-path "
            "(in REAPER: Options > Show REAPER resource path in explorer/finder)")
    if not resource.is_dir():
        raise ReaperInstallError(f"{resource} is not a folder; pass REAPER's resource folder with --resource-path")
    host = reaper_host_folder()
    scripts_folder = resource / "Scripts" / FOLDER
    lib = scripts_folder / "lib"
    command = list(worker_command or [sys.executable, "-m", "acestep_core.worker"])
    notes = []
    try:
        lib.mkdir(parents=True, exist_ok=True)
        installed = []
        for script in script_files(host):
            target = scripts_folder / script.name
            shutil.copyfile(script, target)
            installed.append(target)
        for package in ("acestep_reaper", "acestep_core"):
            if (lib / package).exists():
                shutil.rmtree(lib / package)  # no stale modules from an older version
        for path in library_files(host):
            target = lib / _library_path(path, host)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        reapy_spec = importlib.util.find_spec("reapy")
        if reapy_spec is not None and reapy_spec.origin:
            _copy_package(Path(reapy_spec.origin).parent, lib / "reapy")
        else:
            notes.append("python-reapy is not installed here, so it was not copied: install it for the Python "
                         "REAPER uses (pip install python-reapy).")
        (lib / "acestep-dcc.json").write_text(json.dumps(
            {"worker_command": command, "version": acestep_core.__version__}, indent=2) + "\n", encoding="utf-8")
        relative = [f"{FOLDER}/{path.name}" for path in installed]
        kb_path = resource / "reaper-kb.ini"
        added, present, replaced = register_scripts(kb_path, relative)
    except OSError as exc:
        raise ReaperInstallError(f"cannot write into {resource}: {exc.strerror or exc}; check the folder's "
                                 "permissions, or pass another one with --resource-path") from None
    if added or replaced:
        notes.append("Restart REAPER to see the actions (REAPER reads reaper-kb.ini when it starts; if it was "
                     "running, it may write its old list back when it quits: then load the scripts with "
                     f"Actions > Show action list > New action > Load ReaScript, from {scripts_folder}).")
    notes.append("REAPER needs Python for ReaScript: Options > Preferences > Plug-ins > ReaScript > Enable Python.")
    return ReaperInstallReport(resource, scripts_folder, installed, kb_path, added, present, command, notes, replaced)


# -- ReaPack -------------------------------------------------------------------------------------

REAPACK_BASE_URL = "https://raw.githubusercontent.com/acestep-dcc/acestep-dcc/main/"


def _module_file(root: Path, module: str) -> Path | None:
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _import_time_nodes(tree):
    """Every node that runs when the module is imported: all but function bodies."""
    import ast

    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            stack.extend(ast.iter_child_nodes(node))


def library_files(host_folder: Path | None = None) -> list[Path]:
    """The .py files the actions import from acestep_reaper and acestep_core, found by
    reading the import statements that run at import time (not those inside functions:
    the host-side modules import the heavy parts only lazily, and never call them)."""
    import ast

    host = host_folder or reaper_host_folder()
    roots = {"acestep_reaper": host, "acestep_core": Path(acestep_core.__file__).resolve().parent.parent}
    pending = [f"acestep_reaper.{path.stem}" for path in (host / "acestep_reaper").glob("*.py")]
    found: dict[str, Path] = {}
    while pending:
        module = pending.pop()
        top = module.split(".")[0]
        if module in found or top not in roots:
            continue
        path = _module_file(roots[top], module)
        if path is None:
            continue
        found[module] = path
        parts = module.split(".")
        package = parts if path.name == "__init__.py" else parts[:-1]
        pending += [".".join(parts[:i]) for i in range(1, len(parts))]  # parent packages run too
        for node in _import_time_nodes(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                pending += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
                name = ".".join(filter(None, [base, node.module or ""]))
                pending.append(name)
                pending += [f"{name}.{alias.name}" for alias in node.names]
    return sorted(set(found.values()))


def reapack_index(base_url: str = REAPACK_BASE_URL, version: str | None = None) -> str:
    """hosts/reaper/index.xml: one ReaPack package with the actions (main="main") and
    the library files they import, installed under Scripts/acestep-dcc/acestep-dcc/.
    Users add the index URL in Extensions > ReaPack > Import repositories; REAPER's
    Python needs python-reapy (pip install python-reapy)."""
    from urllib.parse import quote
    from xml.sax.saxutils import escape, quoteattr

    host = reaper_host_folder()
    repo = host.parent.parent
    version = version or acestep_core.__version__
    sources = []
    for script in script_files(host):
        url = base_url + quote(script.relative_to(repo).as_posix())
        sources.append(f'        <source main="main" file={quoteattr(script.name)}>{escape(url)}</source>')
    for path in library_files(host):
        url = base_url + quote(path.relative_to(repo).as_posix())
        sources.append(f"        <source file={quoteattr('lib/' + _library_path(path, host))}>{escape(url)}</source>")
    description = ("ACE-Step music generation in REAPER: generate at the edit cursor (every candidate a take, "
                   "optionally a seamless loop), variations of an item, a score for the project's regions, and "
                   "dynamic-music sets (matched loops at rising intensity on stacked tracks, stingers, and a "
                   "manifest for FMOD, Wwise and Godot); and edits of an item on the timeline: split it into "
                   "stems on a folder track, repaint the time selection as a new take, or add an instrument "
                   "layer on a track below it; and insert a cue from the searchable cue library; and refine an "
                   "item: its request again with your changes (the same seed, or a cover of it), the lineage in "
                   "its notes; from a local worker. "
                   "Needs python-reapy in REAPER's Python and a running acestep-dcc worker.")
    return "\n".join([
        '<?xml version="1.0" encoding="utf-8"?>',
        '<index version="1" name="acestep-dcc">',
        '  <category name="acestep-dcc">',
        '    <reapack name="acestep-dcc.ext" type="script" desc="ACE-Step: music generation">',
        f"      <metadata><description><![CDATA[{description}]]></description></metadata>",
        f'      <version name="{version}" author="acestep-dcc">',
        *sources,
        "      </version>",
        "    </reapack>",
        "  </category>",
        "</index>",
        "",
    ])
