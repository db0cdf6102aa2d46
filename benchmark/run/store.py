"""The tracking store itself: created atomically, reachable before a sweep starts."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from benchmark.errors import UsageError

log = logging.getLogger(__name__)

_CREATE_STORE = "import sys, mlflow; mlflow.MlflowClient(tracking_uri=sys.argv[1]).search_experiments()"


def ensure_store(uri: str) -> None:
    """Create a missing SQLite store atomically, so a sweep killed while it is created leaves none.

    MLflow builds a new store with a series of schema migrations that SQLite cannot roll back as
    a whole; a kill in the middle would leave a half-built file that every later invocation
    trips over. The store is built under a temporary name (in a child process, so no connection
    to that name stays open here) and linked into place only when complete; `os.link` fails
    when another process got there first, and then its store is used.
    """
    if not uri.startswith("sqlite:///"):
        return
    db = Path(uri.removeprefix("sqlite:///"))
    if db.exists():
        return
    import subprocess
    import sys
    import uuid

    tmp = db.with_name(f".{db.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CREATE_STORE, f"sqlite:///{tmp}"], capture_output=True, text=True, timeout=600
        )
        if done.returncode != 0:
            tail = " | ".join(done.stderr.strip().splitlines()[-3:])
            raise RuntimeError(f"could not create the MLflow store {db}: {tail}")
        try:
            os.link(tmp, db)
            log.info("created MLflow store %s", db)
        except FileExistsError:
            log.debug("another process created %s first", db)
        except OSError:  # a filesystem without hard links
            if not db.exists():
                os.replace(tmp, db)
    finally:
        tmp.unlink(missing_ok=True)


def check_tracking_uri(uri: str) -> None:
    """Fail fast (UsageError) when the tracking store cannot be reached."""
    if uri.startswith(("http://", "https://")):
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5):
                pass
        except (urllib.error.URLError, OSError) as exc:
            raise UsageError(f"tracking server unreachable: {uri} ({getattr(exc, 'reason', exc)})") from None
    elif uri.startswith("sqlite:///"):
        folder = Path(uri.removeprefix("sqlite:///")).parent
        if not folder.is_dir():
            raise UsageError(f"tracking store folder not found: {folder}")
    elif uri.startswith(("file:", "./", "/")) or "://" not in uri:
        raise UsageError(
            f"tracking URI {uri!r}: use sqlite:///PATH or an http(s) MLflow server (the file store is not supported)"
        )
