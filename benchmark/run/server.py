"""A local MLflow tracking server for sweeps whose cells run in several processes.

MLflow's SQLite store reports "database is locked" once several processes write to it, so a
parallel sweep puts one `mlflow server` (one server worker, the only writer) in front of the
sweep's SQLite file and points every worker at it over HTTP. The server binds 127.0.0.1 on a free
port unless told otherwise (`run --server-host`), serves artifacts from a folder beside the
database, and is stopped when the sweep ends, also on exceptions; if the driver is killed
(SIGKILL), the kernel sends the server SIGTERM (Linux `PR_SET_PDEATHSIG`), so no orphan keeps the
port.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from benchmark.errors import UsageError
from benchmark.run.server_auth import SweepCredentials, server_environment
from benchmark.run.store import relocate_artifacts

log = logging.getLogger(__name__)

START_TIMEOUT_S = 120.0  # a cold `mlflow server` on a loaded 2-core box takes 5-20 s


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


WILDCARD_HOSTS = ("0.0.0.0", "")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def check_server_host(host: str, *, insecure: bool = False) -> None:
    """UsageError unless a server could listen on `host` (an address of this machine, or 0.0.0.0).

    Beyond loopback the server needs MLflow's basic-auth app (`benchmark.run.server_auth`), unless
    `insecure` (`--insecure-server`) accepts an open server on a trusted network.
    """
    try:
        free_port(host)
    except (OSError, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise UsageError(f"--server-host {host!r}: cannot listen there ({reason})") from None
    if host in LOOPBACK_HOSTS:
        return
    if insecure:
        log.warning(
            "the sweep's MLflow server accepts unauthenticated connections from other machines"
            " (--server-host %s --insecure-server)",
            host,
        )
        return
    import importlib.util

    if importlib.util.find_spec("flask_wtf") is None:
        raise UsageError(
            f"--server-host {host}: a server open beyond this machine needs authentication, which needs MLflow's"
            " auth extra (pip install 'mlflow[auth]'); or pass --insecure-server on a trusted network"
        )


def advertised_uri(host: str, port: int) -> str:
    """The URI workers use: a wildcard bind is advertised under this machine's host name."""
    return f"http://{socket.gethostname() if host in WILDCARD_HOSTS else host}:{port}"


def healthy(uri: str, timeout: float = 2.0) -> bool:
    """True when `uri/health` answers."""
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask the kernel to SIGTERM this process when its parent dies (Linux only)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except OSError:
        pass


def _stop(process: subprocess.Popen, timeout: float = 15.0) -> None:
    """SIGTERM the server's process group (the CLI and its uvicorn child), then SIGKILL."""
    if process.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


@contextlib.contextmanager
def tracking_server(
    store_uri: str,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    credentials: SweepCredentials | None = None,
) -> Iterator[str]:
    """Serve the SQLite store `store_uri` over HTTP for the duration of the `with` block.

    `host` is the bind address: 127.0.0.1 by default; 0.0.0.0 (every interface) or an address of
    this machine lets SLURM nodes or a remote Ray cluster log to it without a server of their own.
    With `credentials` the server runs MLflow's basic-auth app and refuses every request without them.

    Yields:
        The server's http URI, as workers should use it.

    Raises:
        UsageError: the store is not a SQLite URI.
        RuntimeError: the server did not become healthy (its log tail is in the message).
    """
    if not store_uri.startswith("sqlite:///"):
        raise UsageError(f"a local tracking server needs a sqlite:/// store, got {store_uri!r}")
    db = Path(store_uri.removeprefix("sqlite:///"))
    relocate_artifacts(store_uri)  # a moved store serves, and workers write, its own artifact folder
    artifacts = db.parent / "mlartifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    port = port or free_port(host)
    uri = advertised_uri(host, port)
    probe = f"http://127.0.0.1:{port}" if host in WILDCARD_HOSTS else uri  # the driver checks it locally
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", store_uri,
        "--artifacts-destination", str(artifacts.resolve()),
        "--host", host,
        "--port", str(port),
        "--workers", "1",  # one writer process: the reason this server exists
    ]  # fmt: skip
    if host not in LOOPBACK_HOSTS:
        # MLflow answers 403 to Host headers outside localhost and private IPs (DNS-rebinding guard):
        # admit the name workers are given, and nothing wider.
        advertised = uri.removeprefix("http://")
        command += ["--allowed-hosts", f"{advertised},localhost:{port},127.0.0.1:{port}"]
    env = {
        **os.environ,
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",  # no background job runner (more SQLite writers)
        "MLFLOW_LOGGING_LEVEL": os.environ.get("MLFLOW_LOGGING_LEVEL", "WARNING"),
    }
    if credentials is not None:
        command += ["--app-name", "basic-auth"]
        for inherited in ("MLFLOW_AUTH_ADMIN_USERNAME", "MLFLOW_AUTH_ADMIN_PASSWORD"):
            env.pop(inherited, None)  # MLflow prefers these to the ini: they would replace the sweep's admin
        env.update(server_environment(credentials))
    logfile = tempfile.TemporaryFile(mode="w+b")
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=logfile,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,  # Ctrl-C reaches the driver, which still needs the server to mark runs KILLED
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,  # noqa: PLW1509
    )
    try:
        _wait_healthy(process, probe, logfile)
        guarded = "with per-sweep credentials" if credentials is not None else "without authentication"
        log.info("MLflow tracking server %s (pid %d, %s) serving %s", uri, process.pid, guarded, db)
        yield uri
    finally:
        _stop(process)
        logfile.close()
        log.debug("tracking server %s stopped", uri)


def _wait_healthy(process: subprocess.Popen, uri: str, logfile) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    delay = 0.1
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        if healthy(uri, timeout=1.0):
            return
        time.sleep(delay)
        delay = min(delay * 1.5, 1.0)
    logfile.seek(0)
    tail = logfile.read().decode(errors="replace").strip().splitlines()[-5:]
    state = f"exited with code {process.returncode}" if process.poll() is not None else "did not answer"
    raise RuntimeError(f"MLflow server at {uri} {state}: {' | '.join(tail)}")
