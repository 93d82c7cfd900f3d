"""REAPER's web interface (Preferences > Control/OSC/Web), the part reapy uses.

GET /_/cmd;cmd;... runs each command on REAPER's main thread and answers one line
per reply, fields separated by tabs, strings escaped (\\n, \\t, \\\\). Commands:
numeric or _named command ids, GET/SET EXTSTATE, SET/EXTSTATEPERSIST, GET/SET
PROJEXTSTATE, NTRACK, TRANSPORT, MARKER, REGION, SET/POS, GET/<command id>,
SET/UNDO, SET/UNDO_BEGIN, SET/UNDO_END. reapy reads EXTSTATE reapy/server_port and
runs the activate_reapy_server action through it.
"""

from __future__ import annotations

import queue
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

from . import capi
from .model import ReaperApp


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")


def run_commands(app: ReaperApp, commands: str) -> str:
    """Answer a /_/ request; call on the main thread."""
    out = []
    project = app.current
    for command in filter(None, commands.split(";")):
        parts = command.split("/")
        head = unquote(parts[0])
        if head.isdigit():
            capi.run_command(app, int(head), project)
        elif head.startswith("_"):
            command_id = capi.NamedCommandLookup(app, head)
            if command_id:
                capi.run_command(app, command_id, project)
        elif head == "NTRACK":
            out.append(f"NTRACK\t{len(project.tracks)}")
        elif head == "TRANSPORT":
            position = project.cursor
            out.append(f"TRANSPORT\t{project.play_state}\t{position:.6f}\t{int(project.repeat)}\t{position:.3f}\t{position:.3f}")
        elif head in ("MARKER", "REGION"):
            regions = head == "REGION"
            out.append(f"{head}_LIST")
            for marker in project.sorted_markers():
                if marker.is_region == regions:
                    fields = [head, _escape(marker.name), str(marker.number), f"{marker.position:.6f}"]
                    if regions:
                        fields.append(f"{marker.end:.6f}")
                    fields.append(str(marker.color))
                    out.append("\t".join(fields))
            out.append(f"{head}_LIST_END")
        elif head == "GET" and len(parts) >= 4 and parts[1] in ("EXTSTATE", "PROJEXTSTATE"):
            section, key = unquote(parts[2]), unquote(parts[3])
            if parts[1] == "EXTSTATE":
                value = app.get_ext_state(section, key) or ""
            else:
                value = project.ext_state.get((section.upper(), key.upper()), "")
            out.append(f"{parts[1]}\t{section}\t{key}\t{_escape(value)}")
        elif head == "GET" and len(parts) == 2:
            command_id = capi.NamedCommandLookup(app, unquote(parts[1]))
            out.append(f"CMDSTATE\t{parts[1]}\t{capi.GetToggleCommandState(app, command_id)}")
        elif head == "SET" and len(parts) >= 5 and parts[1] in ("EXTSTATE", "EXTSTATEPERSIST"):
            app.set_ext_state(unquote(parts[2]), unquote(parts[3]), unquote("/".join(parts[4:])), parts[1] == "EXTSTATEPERSIST")
        elif head == "SET" and len(parts) >= 5 and parts[1] == "PROJEXTSTATE":
            capi.SetProjExtState(app, project, unquote(parts[2]), unquote(parts[3]), unquote("/".join(parts[4:])))
        elif head == "SET" and len(parts) == 3 and parts[1] == "POS":
            project.cursor = max(0.0, float(parts[2]))
        elif head == "SET" and len(parts) >= 2 and parts[1] == "UNDO_BEGIN":
            capi.Undo_BeginBlock2(app, project)
        elif head == "SET" and len(parts) >= 2 and parts[1] in ("UNDO", "UNDO_END"):
            message = unquote("/".join(parts[2:]))
            if parts[1] == "UNDO":
                capi.Undo_OnStateChange2(app, project, message)
            else:
                capi.Undo_EndBlock2(app, project, message, 0)
    return "".join(line + "\n" for line in out)


class WebInterface:
    """An HTTP server on 127.0.0.1 whose requests wait for REAPER's main loop."""

    def __init__(self, app: ReaperApp, port: int):
        self.app = app
        self.requests: "queue.Queue[tuple[str, queue.Queue]]" = queue.Queue()
        interface = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                if not self.path.startswith("/_/"):
                    self.send_error(404)
                    return
                reply: queue.Queue = queue.Queue()
                interface.requests.put((self.path[3:], reply))
                try:
                    body = reply.get(timeout=30).encode("utf-8")
                except queue.Empty:
                    self.send_error(503)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name=f"web-interface-{port}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def serve_pending(self) -> None:
        """Run the requests that arrived since the last call (main thread)."""
        while True:
            try:
                commands, reply = self.requests.get_nowait()
            except queue.Empty:
                return
            try:
                reply.put(run_commands(self.app, commands))
            except Exception as error:  # answer anyway, and let the fixtures see it
                self.app.fault(error)
                reply.put("")

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
