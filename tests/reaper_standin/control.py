"""The test's hands and eyes inside the stand-in: the person at the screen (answering
dialogs, opening projects, running actions) and a view of the whole state.

These run inside "REAPER": called directly in inside mode, and through reapy's own
channel (client.request) when REAPER is the host process. Everything they return is
JSON-able for that reason. Arrange project contents through the REAPER API (reapy or
RPR_*) in tests; use these only for what has no API.
"""

from __future__ import annotations

import os
from typing import Any

from .model import ReaperApp
from .rpp import write_rpp

APP: ReaperApp | None = None


def _app() -> ReaperApp:
    if APP is None:
        raise RuntimeError("no REAPER stand-in is running in this process")
    return APP


def reset(file_path: str | None = None, record_path: str = "") -> dict:
    """Close every project tab and open a fresh one (saved at file_path, when given);
    forget dialogs, console and faults. Running scripts (reapy's server) keep running."""
    app = _app()
    for project in list(app.projects):
        app.close_project(project)
    project = app.current
    if file_path:
        open_saved_project(file_path, record_path)
    else:
        project.record_path = record_path
    app.user.input_answers.clear()
    app.user.message_box_answers.clear()
    app.user.dialogs.clear()
    app.user.message_boxes.clear()
    app.console.clear()
    app.faults.clear()
    app.unknown.clear()
    app.scripts.errors.clear()
    app.scripts.task_control_answers.clear()
    app.ui_refresh_prevented = 0
    return snapshot()


def open_saved_project(file_path: str, record_path: str = "") -> None:
    """The current tab becomes a project saved at file_path (an .rpp is written)."""
    app = _app()
    project = app.current
    project.file_path = os.path.abspath(file_path)
    project.record_path = record_path
    os.makedirs(os.path.dirname(project.file_path), exist_ok=True)
    write_rpp(project, project.file_path)
    project.dirty = False


def answer_inputs(values: list[str] | None) -> None:
    """The next GetUserInputs dialog gets these values (None: the user cancels)."""
    _app().user.answer_inputs(values)


def answer_message_box(button: int) -> None:
    _app().user.answer_message_box(button)


def answer_task_control(choice: str) -> None:
    _app().scripts.answer_task_control(choice)


def run_action(command: str | int) -> bool:
    """Run an action from the Actions list, by command id or named command ("_RS...")."""
    from . import capi

    app = _app()
    command_id = command if isinstance(command, int) else capi.NamedCommandLookup(app, command)
    if not command_id:
        return False
    capi.run_command(app, command_id, app.current)
    return True


def action_for_script(path: str) -> str | None:
    """The named command ("_RS...") of a script in the action list."""
    for action in _app().actions.values():
        if os.path.abspath(action.path) == os.path.abspath(path):
            return "_" + action.name
    return None


def pump(cycles: int = 1) -> None:
    """Run main-loop cycles (deferred code) now."""
    for _ in range(cycles):
        _app().scripts.cycle()


def faults() -> list[str]:
    return [f"{type(error).__name__}: {error}" for error in _app().faults]


def snapshot() -> dict[str, Any]:
    """Everything a test asserts on, as plain data."""
    app = _app()
    project = app.current
    return {
        "project": project_state(project),
        "project_count": len(app.projects),
        "ext_state": {f"{s}/{k}": v for (s, k), v in sorted(app.ext_state.items())},
        "dialogs": [
            {"title": d.title, "captions": d.captions, "defaults": d.defaults, "answer": d.answer}
            for d in app.user.dialogs
        ],
        "message_boxes": [{"message": m.message, "title": m.title, "type": m.type, "answer": m.answer} for m in app.user.message_boxes],
        "console": "".join(app.console),
        "faults": faults(),
        "script_errors": [{"path": e.path, "traceback": e.traceback} for e in app.scripts.errors],
        "running_scripts": [i.path for i in app.scripts.running()],
        "ui_refresh_prevented": app.ui_refresh_prevented,
        "unknown": list(app.unknown),
    }


def project_state(project) -> dict[str, Any]:
    return {
        "file": project.file_path,
        "recording_path": project.recording_path(),
        "cursor": project.cursor,
        "time_selection": list(project.time_selection),
        "tempo": {
            "bpm": project.tempo.bpm, "num": project.tempo.num, "denom": project.tempo.denom,
            "markers": [vars(m).copy() for m in project.tempo.markers],
        },
        "tracks": [_track_state(track) for track in project.tracks],
        "markers": [
            {"is_region": m.is_region, "position": m.position, "end": m.end, "name": m.name, "number": m.number, "color": m.color}
            for m in project.sorted_markers()
        ],
        "undo": [point.label for point in project.undo_points],
        "redo": [point.label for point in project.redo_points],
        "undo_depth": project.undo_depth,
        "dirty": project.dirty,
    }


def _track_state(track) -> dict[str, Any]:
    return {
        "name": track.name,
        "selected": track.selected,
        "items": [
            {
                "position": item.position,
                "length": item.length,
                "selected": item.selected,
                "notes": item.notes,
                "active_take": item.active,
                "fade_in": item.values["D_FADEINLEN"],
                "fade_out": item.values["D_FADEOUTLEN"],
                "mute": bool(item.values["B_MUTE"]),
                "ext": dict(item.ext),
                "takes": [
                    {
                        "name": take.name,
                        "source": take.source.filename if take.source else None,
                        "source_length": take.source.info.length if take.source else None,
                        "start_offset": take.values["D_STARTOFFS"],
                        "playrate": take.values["D_PLAYRATE"],
                        "ext": dict(take.ext),
                    }
                    for take in item.takes
                ],
            }
            for item in track.sorted_items()
        ],
    }
