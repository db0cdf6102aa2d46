"""The tracking store itself: created atomically, reachable before a sweep starts, movable as a folder."""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterable
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
        relocate_artifacts(uri)
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


# The artifact tables of MLflow's SQLite schema, and their location column.
_LOCATION_COLUMNS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("logged_models", "artifact_location"),
)
_ARTIFACTS = "mlartifacts"  # the folder beside the store (`Tracker._artifact_location`, the sweep's server)


def artifacts_root(db: Path) -> str:
    """The `file:` URI of the artifact folder that belongs beside the SQLite store `db`."""
    return (Path(db).parent / _ARTIFACTS).resolve().as_uri()


def relocate_artifacts(uri: str) -> int:
    """Point a moved or copied SQLite store at the artifact folder beside it; returns the rows rewritten.

    MLflow records artifact locations as absolute URIs (`file:///old/place/mlartifacts/b2n/...`), so a
    store folder (`mlflow.db` with `mlartifacts/` beside it) that was moved, copied or unpacked from an
    archive would read, and a copy would even write, the artifacts of the old place. Every command
    opens the store through here first: an experiment's location `<root>/mlartifacts/<protocol>` under
    another root is rewritten, with its runs', in one transaction, to this store's own. Left alone:
    locations elsewhere (a server's `mlflow-artifacts:`, a bucket); a database copied without its
    `mlartifacts/` while the old folder still exists (it keeps reading the old one, with a warning);
    a store that cannot be written (a warning).
    """
    if not uri.startswith("sqlite:///"):
        return 0
    db = Path(uri.removeprefix("sqlite:///"))
    if not db.is_file():
        return 0
    here = artifacts_root(db)
    try:
        connection = _connect(db)
    except sqlite3.OperationalError as exc:
        log.warning("store %s could not be opened to check its artifact locations (%s)", db, exc)
        return 0
    roots: set[str] = set()
    try:
        tables = {name for (name,) in connection.execute("select name from sqlite_master where type = 'table'")}
        if "experiments" not in tables:
            return 0
        roots = _foreign_roots(
            (row[0] or "" for row in connection.execute("select artifact_location from experiments")), here
        )
        if not (db.parent / _ARTIFACTS).is_dir():
            kept = {root for root in roots if _uri_path(root).is_dir()}
            if kept:
                log.warning(
                    "store %s has no %s/ beside it and keeps reading the artifacts under %s; copy that folder "
                    "beside it to make the store its own",
                    db,
                    _ARTIFACTS,
                    ", ".join(sorted(kept)),
                )
            roots -= kept
        if not roots:
            return 0
        changed = 0
        with connection:
            for old in sorted(roots):
                for table, column in _LOCATION_COLUMNS:
                    if table in tables:
                        changed += connection.execute(
                            f"update {table} set {column} = ? || substr({column}, ?) "  # noqa: S608 - fixed names
                            f"where substr({column}, 1, ?) = ? and substr({column}, ?, 1) = '/'",
                            (here, len(old) + 1, len(old), old, len(old) + 1),
                        ).rowcount
        log.info("store %s was moved: %d artifact locations now under %s", db, changed, here)
        return changed
    except sqlite3.OperationalError as exc:
        log.warning(
            "store %s: artifact locations under %s could not be rewritten to %s (%s)",
            db,
            ", ".join(sorted(roots)) or "another folder",
            here,
            exc,
        )
        return 0
    finally:
        connection.close()


def _connect(db: Path) -> sqlite3.Connection:
    """The store for writing, else for reading; a URI built from the path, so `#`, `?` and `%` stay in the name."""
    base = db.resolve().as_uri()
    try:
        return sqlite3.connect(f"{base}?mode=rw", uri=True, timeout=60)
    except sqlite3.OperationalError:
        return sqlite3.connect(f"{base}?mode=ro", uri=True, timeout=60)


def _foreign_roots(locations: Iterable[str], here: str) -> set[str]:
    """The `.../mlartifacts` roots of experiment locations (`<root>/<protocol>`) other than `here`.

    The root is the location's parent, never the first `mlartifacts` of the path: a store kept under a
    folder that happens to be named so must not look moved.
    """
    roots = set()
    for location in locations:
        parent = location.rstrip("/").rsplit("/", 1)[0]
        if location.startswith("file:") and parent.endswith(f"/{_ARTIFACTS}") and parent != here:
            roots.add(parent)
    return roots


def _uri_path(uri: str) -> Path:
    """The local path of a `file:` URI (percent-escapes decoded)."""
    from urllib.parse import unquote, urlsplit

    return Path(unquote(urlsplit(uri).path))


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
