"""The SQLite plumbing our on-disk caches share (features, captions): raw bytes, no pickle.

One connection per thread (sqlite3 connections are not shared across threads), WAL journaling so
readers never block the writer, and a long busy timeout: concurrent workers of one sweep write to
the same file, and SQLite's own locking serialises them.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

CHUNK = 500  # keys per `IN (...)` query, well inside SQLite's host-parameter limit
BUSY_TIMEOUT_S = 120


class SqliteCache:
    """A cache file whose tables (`schema` statements) are created on first connection."""

    def __init__(self, path: Path, schema: Sequence[str]) -> None:
        self.path = Path(path)
        self._schema = tuple(schema)
        self._local = threading.local()

    def _connect(self) -> sqlite3.Connection:
        """This thread's connection; the file and its tables are created on first use."""
        con = getattr(self._local, "con", None)
        if con is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            with con:
                for statement in self._schema:
                    con.execute(statement)
            self._local.con = con
        return con

    def _select_in(self, sql: str, keys: Sequence, before: Sequence = (), after: Sequence = ()) -> Iterator[tuple]:
        """Rows of `sql`, whose `{marks}` is an `IN (...)` over the distinct `keys`, chunk by chunk.

        `before`/`after` are the query's other parameters, around the `IN` list.
        """
        con = self._connect()
        unique = sorted(set(keys))
        for start in range(0, len(unique), CHUNK):
            chunk = unique[start : start + CHUNK]
            yield from con.execute(sql.format(marks=",".join("?" * len(chunk))), [*before, *chunk, *after])
