"""The resource folder's configuration files, read at start-up as REAPER reads them.

- reaper.ini: `csurf_N=HTTP 0 <port> ...` lines are web interfaces (reapy adds one).
- reaper-kb.ini: `SCR <flags> <section> <named id> "<description>" <path>` lines put
  ReaScripts in the action list; relative paths are under <resource>/Scripts.
- reaper-extstate.ini: persistent ExtState, one [section] per ExtState section.
"""

from __future__ import annotations

import configparser
import os
import re
import shlex

from .model import ReaperApp

_CSURF = re.compile(r"^\s*csurf_\d+\s*=\s*HTTP\s+\d+\s+(\d+)\b", re.IGNORECASE)


def web_interface_ports(resource_path: str) -> list[int]:
    path = os.path.join(resource_path, "reaper.ini")
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return []
    return [int(m.group(1)) for m in map(_CSURF.match, lines) if m]


def parse_kb_script_lines(text: str) -> list[dict]:
    """Every SCR line of a reaper-kb.ini: flags, section, name, description, path."""
    found = []
    for line in text.splitlines():
        if not line.startswith("SCR "):
            continue
        try:
            parts = shlex.split(line, posix=True)
        except ValueError:
            continue
        if len(parts) < 6:
            continue
        found.append({
            "flags": int(parts[1]), "section": int(parts[2]), "name": parts[3].lstrip("_"),
            "description": parts[4], "path": " ".join(parts[5:]),
        })
    return found


def load_actions(app: ReaperApp) -> None:
    path = os.path.join(app.resource_path, "reaper-kb.ini")
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return
    for entry in parse_kb_script_lines(text):
        script = entry["path"]
        if not os.path.isabs(script):
            script = os.path.join(app.resource_path, "Scripts", script)
        app.register_script(script, entry["description"], name=entry["name"], section=entry["section"])


def load_extstate_ini(app: ReaperApp) -> None:
    parser = configparser.ConfigParser(strict=False, delimiters="=", interpolation=None)
    parser.optionxform = str
    try:
        parser.read(os.path.join(app.resource_path, "reaper-extstate.ini"), encoding="utf-8")
    except configparser.Error:
        return
    for section in parser.sections():
        for key, value in parser.items(section):
            app.ext_state[(section.lower(), key.lower())] = value
            app.persistent_ext_state[(section.lower(), key.lower())] = value


def write_extstate_ini(app: ReaperApp) -> None:
    sections: dict[str, dict[str, str]] = {}
    for (section, key), value in sorted(app.persistent_ext_state.items()):
        sections.setdefault(section, {})[key] = value
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{key}={value}" for key, value in values.items()]
        lines.append("")
    with open(os.path.join(app.resource_path, "reaper-extstate.ini"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))


def boot(app: ReaperApp) -> None:
    """Read the resource folder as REAPER does at start-up."""
    load_extstate_ini(app)
    load_actions(app)
    app.web_ports = web_interface_ports(app.resource_path)


def format_kb_script_line(name: str, description: str, path: str, resource_path: str, section: int = 0) -> str:
    """An SCR line as REAPER writes it: path relative to Scripts/ when inside it, quoted
    when it holds spaces."""
    scripts = os.path.join(resource_path, "Scripts")
    if os.path.commonpath([os.path.abspath(path), scripts]) == scripts:
        path = os.path.relpath(path, scripts)
    quoted = f'"{path}"' if " " in path else path
    return f'SCR 4 {section} {name} "{description}" {quoted}'


def write_kb_script_lines(app: ReaperApp) -> None:
    """Rewrite reaper-kb.ini's SCR lines from the action list, keeping every other line."""
    path = os.path.join(app.resource_path, "reaper-kb.ini")
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            kept = [line for line in handle.read().splitlines() if not line.startswith("SCR ")]
    except OSError:
        kept = []
    lines = kept + [
        format_kb_script_line(action.name, action.description, action.path, app.resource_path, action.section)
        for action in app.actions.values()
    ]
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
