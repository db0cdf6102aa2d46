"""Content-addressed on-disk cache of frozen image features (methods/REFERENCES.md §5).

For methods whose image path has no learned parameters (zero-shot, CoOp, CoCoOp, BiMoRS), the
features of an (image, view) pair depend only on the backbone weights, the transform and the image
bytes. They are stored once in a SQLite file per cache folder, keyed by
`space = sha(backbone identity, transform spec)`, the image's sha256 and the view index, so every
method, seed and run reuses them and a changed backbone or transform simply misses. Values are raw
float32 bytes (no pickle). SQLite's own locking makes concurrent workers safe.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from benchmark.data.sqlite_cache import SqliteCache

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS features (
    space TEXT NOT NULL, digest TEXT NOT NULL, view INTEGER NOT NULL,
    pooled BLOB NOT NULL, tokens BLOB, n_tokens INTEGER,
    PRIMARY KEY (space, digest, view)
)
"""


def feature_space(backbone_identity: str, transform_digest: str) -> str:
    """Cache namespace of one backbone + transform."""
    return hashlib.sha256(f"{backbone_identity}|{transform_digest}".encode()).hexdigest()[:24]


class FeatureCache(SqliteCache):
    """Pooled features (and optionally last-block tokens) by (space, image digest, view)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, [_SCHEMA])
        self._connect()  # the file exists from here on, also for other processes

    def get(
        self, space: str, keys: Sequence[tuple[str, int]], *, need_tokens: bool
    ) -> dict[tuple[str, int], tuple[np.ndarray, np.ndarray | None]]:
        """Cached entries among `keys` ((digest, view) pairs); entries lacking needed tokens miss."""
        found: dict[tuple[str, int], tuple[np.ndarray, np.ndarray | None]] = {}
        wanted = set(keys)
        views = sorted({v for _, v in keys})
        # Only the asked-for views, and token blobs only when needed: the rest is never read off disk.
        columns = "digest, view, pooled, " + ("tokens" if need_tokens else "NULL") + ", n_tokens"
        view_marks = ",".join("?" * len(views))
        sql = f"SELECT {columns} FROM features WHERE space = ? AND digest IN ({{marks}}) AND view IN ({view_marks})"
        for digest, view, pooled, tokens, n_tokens in self._select_in(
            sql, [d for d, _ in keys], before=[space], after=views
        ):
            if (digest, view) not in wanted or (need_tokens and tokens is None):
                continue
            pooled_arr = np.frombuffer(pooled, dtype=np.float32)
            tokens_arr = None
            if tokens is not None and need_tokens:
                tokens_arr = np.frombuffer(tokens, dtype=np.float32).reshape(n_tokens, -1)
            found[(digest, view)] = (pooled_arr, tokens_arr)
        return found

    def put(self, space: str, entries: Iterable[tuple[str, int, np.ndarray, np.ndarray | None]]) -> None:
        """Store (digest, view, pooled [D], tokens [N, W] or None) entries."""
        rows = [
            (
                space,
                digest,
                int(view),
                np.ascontiguousarray(pooled, dtype=np.float32).tobytes(),
                None if tokens is None else np.ascontiguousarray(tokens, dtype=np.float32).tobytes(),
                None if tokens is None else int(tokens.shape[0]),
            )
            for digest, view, pooled, tokens in entries
        ]
        con = self._connect()
        with con:
            con.executemany("INSERT OR REPLACE INTO features VALUES (?, ?, ?, ?, ?, ?)", rows)

    def count(self, space: str | None = None) -> int:
        """Number of cached entries (in one space, or all)."""
        con = self._connect()
        if space is None:
            return con.execute("SELECT COUNT(*) FROM features").fetchone()[0]
        return con.execute("SELECT COUNT(*) FROM features WHERE space = ?", (space,)).fetchone()[0]
