"""`acestep-dcc cluster up`: start (or join) Ray, run the Serve application, write the
discovery file, and stay in the foreground until Ctrl+C or SIGTERM.

Off this machine the API needs TLS (--tls-cert and --tls-key, served by Serve's own
proxy) or an explicit --plain-http, so tokens never cross a network in the clear by
accident.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import signal
import socket
import sys
import threading
import urllib.parse
from pathlib import Path

from acestep_core import __version__, config
from acestep_core.worker.flags import whole_number  # standard library only, like this parser

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
DEFAULT_PORT = 8765
OBJECT_STORE_BYTES = 256 * 1024 * 1024  # a local Ray keeps little: cues cross it in 4 MB pieces
EXIT_CANNOT_START = 2


def add_cluster_commands(commands) -> None:
    cluster = commands.add_parser("cluster", help="serve the worker API from a Ray Serve cluster (a studio's GPUs)")
    actions = cluster.add_subparsers(title="actions", metavar="ACTION")
    cluster.set_defaults(handler=lambda _: cluster.print_help(sys.stderr) or 2)
    up = actions.add_parser("up", help="start the cluster's API and replicas; stays in the foreground")
    up.add_argument("--address", default=None,
                    help="Ray to join: 'auto' (the one 'ray start --head' started on this machine) or "
                         "ray://HEAD:10001; default: start a Ray of its own on this machine")
    up.add_argument("--replicas", type=whole_number, default=1, metavar="N",
                    help="generation replicas (each takes one GPU with the acestep backend; default: 1)")
    up.add_argument("--max-replicas", type=whole_number, default=None, metavar="N",
                    help="autoscale from 1 up to N replicas on the number of jobs waiting")
    up.add_argument("--backend", choices=("auto", "acestep", "sketch"), default="auto",
                    help="what generates (default: acestep when a model is configured, else the sketch)")
    up.add_argument("--model", help="the model folder, on every node that runs a replica")
    up.add_argument("--device", help="torch device inside each replica (default: its GPU, else cpu)")
    up.add_argument("--cpus-per-replica", type=float, default=1.0, metavar="N")
    up.add_argument("--host", default="127.0.0.1", help="address the API listens on (default: this machine only)")
    up.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"the API's port (default: {DEFAULT_PORT})")
    up.add_argument("--tls-cert", help="certificate file (PEM) for HTTPS; with --tls-key")
    up.add_argument("--tls-key", help="private key file (PEM) for HTTPS")
    up.add_argument("--plain-http", action="store_true",
                    help="serve plain HTTP on an address other computers reach (a trusted LAN only)")
    up.add_argument("--max-queue", type=whole_number, default=64, metavar="N",
                    help="jobs that may wait for a replica; past it a submission gets 429 (default: 64)")
    up.add_argument("--data-dir", help="job database, outputs and uploads, on the head node (default: "
                                       "acestep-dcc's cluster folder)")
    up.add_argument("--state-dir", help="where the discovery file is written (default: acestep-dcc's state folder)")
    up.add_argument("--tokens", help="the per-user tokens file (default: tokens.json in the state folder)")
    up.add_argument("--num-cpus", type=int, default=None,
                    help="CPUs for a Ray this command starts itself (default: all)")
    up.set_defaults(handler=run_cluster_up)


def _refusal(args: argparse.Namespace) -> str | None:
    """A sentence when the flags ask for something unsafe or impossible."""
    if bool(args.tls_cert) != bool(args.tls_key):
        return "HTTPS needs both --tls-cert and --tls-key"
    for name in ("tls_cert", "tls_key"):
        path = getattr(args, name)
        if path and not Path(path).is_file():
            return f"--{name.replace('_', '-')} {path} is not a file; give the PEM file's path"
    if args.host not in LOCAL_HOSTS and not args.tls_cert and not args.plain_http:
        return (f"--host {args.host} lets other computers in: give --tls-cert and --tls-key for HTTPS, or "
                "--plain-http to serve plain HTTP on a trusted LAN")
    if args.max_replicas is not None and args.max_replicas < args.replicas:
        return f"--max-replicas {args.max_replicas} is below --replicas {args.replicas}; raise it or leave it out"
    return None


def run_cluster_up(args: argparse.Namespace) -> int:
    refusal = _refusal(args)
    if refusal:
        print(f"acestep-dcc cluster: {refusal}", file=sys.stderr)
        return EXIT_CANNOT_START
    if args.address is None:
        # A Ray of our own stays on loopback: Ray turns 127.0.0.1 into this machine's network
        # address unless told, before it is imported, that it runs on one machine only.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
        from ray import serve
        from ray.serve.config import HTTPOptions
    except ImportError:
        print("acestep-dcc cluster: Ray Serve is not installed; install the cluster extra: "
              "pip install 'acestep-dcc[cluster]'", file=sys.stderr)
        return EXIT_CANNOT_START
    from acestep_core.backends import resolve_backend_name
    from acestep_core.cluster.app import APP_NAME, ClusterSettings, build_application
    from acestep_core.errors import AceStepError
    from acestep_core.worker.discovery import WorkerInfo, make_private_folder, remove_discovery, write_discovery
    from acestep_core.worker.tokens import TOKENS_FILE

    try:
        backend = resolve_backend_name(args.backend, args.model)
        model = str(config.configured_model(args.model)) if backend == "acestep" else None
    except AceStepError as exc:
        print(f"acestep-dcc cluster: {exc}", file=sys.stderr)
        return EXIT_CANNOT_START
    state = make_private_folder(Path(args.state_dir) if args.state_dir else config.state_dir())
    data = Path(args.data_dir) if args.data_dir else config.app_home() / "cluster"
    settings = ClusterSettings(backend=backend, model=model, device=args.device, replicas=args.replicas,
                               max_replicas=args.max_replicas, cpus_per_replica=args.cpus_per_replica,
                               data_dir=str(data.resolve()), max_queue=args.max_queue,
                               tokens_file=str(Path(args.tokens or state / TOKENS_FILE).resolve()))
    local_ray = args.address is None
    init = {"address": args.address, "include_dashboard": False, "log_to_driver": False}
    if local_ray:
        init.update(num_cpus=args.num_cpus, object_store_memory=OBJECT_STORE_BYTES, _node_ip_address="127.0.0.1")
    try:
        ray.init(**init)
    except Exception as exc:  # noqa: BLE001 - Ray's own errors are many; say which step failed
        print(f"acestep-dcc cluster: cannot start or join Ray ({type(exc).__name__}: {exc}); for 'auto' run "
              "'ray start --head' first", file=sys.stderr)
        return EXIT_CANNOT_START
    http = {"host": args.host, "port": args.port, "location": "HeadOnly"}
    if args.tls_cert:
        http.update(ssl_certfile=str(Path(args.tls_cert).resolve()), ssl_keyfile=str(Path(args.tls_key).resolve()))
    stop = threading.Event()
    for caught in (signal.SIGINT, signal.SIGTERM):
        signal.signal(caught, lambda *_: stop.set())
    try:
        serve.start(http_options=HTTPOptions(**http))
        print(f"acestep-dcc cluster: starting {args.replicas} {backend} replica(s)...", file=sys.stderr)
        serve.run(build_application(settings), name=APP_NAME, route_prefix="/")
    except Exception as exc:  # noqa: BLE001
        print(f"acestep-dcc cluster: the cluster did not start ({type(exc).__name__}: {exc})", file=sys.stderr)
        _shutdown(serve, ray, local_ray)
        return EXIT_CANNOT_START
    scheme = "https" if args.tls_cert else "http"
    shown = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(args.host, args.host)
    if args.host in ("0.0.0.0", "::") and (args.address or "").startswith("ray://"):
        shown = urllib.parse.urlsplit(args.address).hostname or shown  # the API is on the head, not here
    url = f"{scheme}://{shown}:{args.port}"
    write_discovery(WorkerInfo(url=url, token=settings.token, pid=os.getpid(), version=__version__,
                               started_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")), state)
    print(f"acestep-dcc cluster: serving {url} (token in {state / 'worker.json'}; give each user their own "
          "with 'acestep-dcc tokens add NAME')", file=sys.stderr)
    print(f"url: {url}\ntoken: {settings.token}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        remove_discovery(os.getpid(), state)
        _shutdown(serve, ray, local_ray)
    print("acestep-dcc cluster: stopped", file=sys.stderr)
    return 0


def _shutdown(serve, ray, local_ray: bool) -> None:
    try:
        serve.delete("acestep") if not local_ray else serve.shutdown()
    finally:
        ray.shutdown()


def free_port(host: str = "127.0.0.1") -> int:
    """A port free now (for tests and benches; Serve's proxy cannot take port 0)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
