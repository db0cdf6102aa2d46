"""`python -m benchmark ui`: the MLflow UI on the tracking store, bound to 127.0.0.1 unless told otherwise."""

from __future__ import annotations

import sys

from benchmark.cli.run import _int


def add_parser(sub) -> None:
    """Add `ui` to the CLI."""
    p = sub.add_parser("ui", help="open the MLflow UI on the tracking store")
    p.add_argument("--tracking-uri", default=None)
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", default="5000")
    p.set_defaults(handler=cmd_ui)


def cmd_ui(args) -> int:
    """`ui`: `mlflow ui` bound to localhost unless told otherwise."""
    import os
    import subprocess

    from benchmark.paths import default_tracking_uri

    uri = args.tracking_uri or default_tracking_uri()
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        uri,
        "--host",
        args.host,
        "--port",
        str(_int(args.port, "--port")),
    ]
    print(f"MLflow UI on http://{args.host}:{args.port} for {uri} (Ctrl-C to stop)")
    return subprocess.call(command, env=os.environ.copy())
