"""A REAPER process: the stand-in booted from a resource folder, its web interfaces
up, and a main loop that serves them and runs deferred script code.

    python -m reaper_standin.host --resource DIR [--reapy-server-port N] [--interval S]

Scripts run here exactly as in REAPER's embedded Python: `reaper_python` importable,
`__main__` holding RPR_* and `obj`, so reapy imports in its inside mode and its real
activate_reapy_server script serves distant clients. Prints one line
`READY {json}` when up; stops when stdin closes.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time

from . import control, start_reaper
from .web_interface import WebInterface


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--resource", required=True)
    parser.add_argument("--record-path", default=None, help="default recording path for unsaved projects")
    parser.add_argument("--reapy-server-port", type=int, default=None)
    parser.add_argument("--interval", type=float, default=0.002, help="seconds between main-loop cycles")
    args = parser.parse_args(argv)

    app, module = start_reaper(args.resource, args.record_path)
    sys.modules["reaper_python"] = module
    sys.modules["__main__"] = app.scripts.main
    control.APP = app
    if args.reapy_server_port:
        # reapy's server port is a constant (2306); a free port keeps parallel runs apart
        import reapy.config

        reapy.config.REAPY_SERVER_PORT = args.reapy_server_port

    interfaces = [WebInterface(app, port) for port in app.web_ports]
    for interface in interfaces:
        interface.start()

    stopping = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stopping.set()), daemon=True).start()
    print("READY " + json.dumps({"web_ports": app.web_ports, "actions": len(app.actions)}), flush=True)

    while not stopping.is_set():
        for interface in interfaces:
            interface.serve_pending()
        try:
            app.scripts.cycle()
        except Exception as error:  # a fault inside a script: kept for the tests, loop goes on
            app.fault(error)
        time.sleep(args.interval)

    app.scripts.shutdown()
    for interface in interfaces:
        interface.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
