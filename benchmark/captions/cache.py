"""SQLite cache of the caption stage: image -> caption text, caption text -> embedding (no pickle).

Two tables, because the two halves have different keys and costs:

* `captions (captioner, digest) -> text`: what a captioning model wrote for the image whose bytes have
  sha256 `digest`. BLIP-2 is the expensive step; switching the encoder must not re-run it.
* `embeddings (encoder, text_sha) -> float32 vector`: an embedding depends only on the text and the
  encoder, so identical captions are encoded once and a changed dataset caption simply misses.

Together they serve the key (image sha256, captioner id, encoder id) -> (text, embedding). SQLite's
locking (WAL) makes concurrent workers safe, as in `benchmark.data.feature_cache`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from benchmark.data.sqlite_cache import SqliteCache

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS captions ("
    " captioner TEXT NOT NULL, digest TEXT NOT NULL, text TEXT NOT NULL, PRIMARY KEY (captioner, digest))",
    "CREATE TABLE IF NOT EXISTS embeddings ("
    " encoder TEXT NOT NULL, text_sha TEXT NOT NULL, dim INTEGER NOT NULL, vector BLOB NOT NULL,"
    " PRIMARY KEY (encoder, text_sha))",
)


def text_sha(text: str) -> str:
    """sha256 of a caption's UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class CaptionCache(SqliteCache):
    """Caption texts by (captioner, image digest) and embeddings by (encoder, text sha256)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA)

    def get_captions(self, captioner: str, digests: Sequence[str]) -> dict[str, str]:
        """Stored captions among `digests` (image sha256) for `captioner`."""
        sql = "SELECT digest, text FROM captions WHERE captioner = ? AND digest IN ({marks})"
        return dict(self._select_in(sql, digests, before=[captioner]))

    def put_captions(self, captioner: str, entries: Iterable[tuple[str, str]]) -> None:
        """Store (digest, text) pairs."""
        con = self._connect()
        with con:
            con.executemany("INSERT OR REPLACE INTO captions VALUES (?, ?, ?)", [(captioner, d, t) for d, t in entries])

    def get_embeddings(self, encoder: str, shas: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored embeddings among `shas` (caption text sha256) for `encoder`."""
        sql = "SELECT text_sha, dim, vector FROM embeddings WHERE encoder = ? AND text_sha IN ({marks})"
        return {
            sha: np.frombuffer(vector, dtype=np.float32).reshape(dim)
            for sha, dim, vector in self._select_in(sql, shas, before=[encoder])
        }

    def put_embeddings(self, encoder: str, entries: Iterable[tuple[str, np.ndarray]]) -> None:
        """Store (text sha256, vector [E]) pairs as raw float32 bytes."""
        rows = []
        for sha, vector in entries:
            data = np.ascontiguousarray(vector, dtype=np.float32).reshape(-1)
            rows.append((encoder, sha, int(data.shape[0]), data.tobytes()))
        con = self._connect()
        with con:
            con.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?)", rows)
