"""`python -m benchmark ui`: the MLflow UI on the tracking store, bound to 127.0.0.1 unless told otherwise.

The UI runs as a child process group (the `mlflow` CLI and its web-server workers). It dies with this command
however this command ends: Ctrl-C, SIGTERM (the group is terminated, then killed), or this process being killed
outright (Linux `PR_SET_PDEATHSIG`), so no server keeps the port or its memory afterwards.
"""

from __future__ import annotations

import sys

from benchmark.cli.run import _int


def add_parser(sub) -> None:
    """Add `ui` to the CLI."""
    p = sub.add_parser(
        "ui",
        help="open the MLflow UI on the tracking store",
        epilog="example: python -m benchmark ui --port 5001   (then open http://127.0.0.1:5001)",
    )
    p.add_argument("--tracking-uri", default=None, help="MLflow store (default: MLFLOW_TRACKING_URI or ./mlflow.db)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", default="5000", help="port (default 5000)")
    p.add_argument("--workers", default="1", help="web-server worker processes (default 1: enough for one person)")
    p.set_defaults(handler=cmd_ui)


def cmd_ui(args) -> int:
    """`ui`: `mlflow ui` bound to localhost unless told otherwise; stopped with this command."""
    import os
    import signal
    import subprocess
    from pathlib import Path

    from benchmark.paths import default_tracking_uri
    from benchmark.run.server import _die_with_parent, _stop
    from benchmark.run.store import artifacts_root, relocate_artifacts
    from benchmark.run.tracking import check_tracking_uri

    uri = args.tracking_uri or default_tracking_uri()
    check_tracking_uri(uri)
    relocate_artifacts(uri)  # a moved or unpacked store shows its own artifacts
    port, workers = _int(args.port, "--port"), _int(args.workers, "--workers")
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri]
    if uri.startswith("sqlite:///"):  # runs logged through a sweep's server keep `mlflow-artifacts:` locations
        command += ["--artifacts-destination", artifacts_root(Path(uri.removeprefix("sqlite:///")))]
    command += ["--host", args.host, "--port", str(port), "--workers", str(workers)]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # no background job consumers
    process = subprocess.Popen(
        command,
        env=env,
        start_new_session=True,  # one group: stopping it stops every worker of the server
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,  # noqa: PLW1509
    )

    def stop(signum, _frame) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = signal.signal(signal.SIGTERM, stop)
    print(f"MLflow UI on http://{args.host}:{port} for {uri} (Ctrl-C to stop)", flush=True)
    try:
        return process.wait()
    except KeyboardInterrupt:
        print("stopping the MLflow UI", file=sys.stderr)
        return 130
    finally:
        _stop(process, timeout=10.0)
        signal.signal(signal.SIGTERM, previous)
