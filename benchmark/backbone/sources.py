"""Where a backbone's weights file comes from, and whether it is still the file first trusted.

* Hub files (`benchmark.backbone.registry` entries with source `hf_hub`) resolve through
  `huggingface_hub.hf_hub_download` into its normal cache: the cached copy first (no network), else a
  download, unless `HF_HUB_OFFLINE`/`TRANSFORMERS_OFFLINE` is set; then one `UsageError` line names the
  repository, the file, the `hf download` command to run on a connected machine and how to pass a copy.
* Local files are used as they are; a release archive (`.zip`, such as SkyScript's) has its checkpoint
  member extracted once into `<cache>/backbones/unpacked/` (a file, so later loads are memory-mapped).
* Digests: the sha256 of the file actually loaded (the extracted member of an archive), computed once per
  process and file version (`file_digest`).
* Trust on first use (named backbones): the first digest seen for (backbone name, source) is recorded in
  `<cache>/backbones/trusted.json` (plain JSON) and logged; a later different digest is a `UsageError`
  naming both, so weights replaced upstream or on disk never enter a run under the old name unnoticed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from benchmark.backbone.hub_cache import hf_cache_dir, hub_cached_file, hub_fetch_advice, offline_variable
from benchmark.errors import UsageError
from benchmark.paths import cache_dir, file_sha256, replace_atomically

log = logging.getLogger(__name__)

ARCHIVE_SUFFIXES = (".zip",)
MEMBER_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")
TRUST_FILE = "trusted.json"
_DIGESTS: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256, per process
_LOCK = threading.Lock()


@dataclass(frozen=True)
class WeightsFile:
    """The weights a backbone loads.

    Attributes:
        path: the local file to load (a hub cache snapshot, a user's file, an archive's extracted member).
        source: where it comes from, as the user names it: `org/repo/file` for the hub, a path, or
            `archive.zip!member`; the key of its trust record.
        sha256: the hex digest of `path`'s bytes.
    """

    path: Path
    source: str
    sha256: str


def file_digest(path: Path) -> str:
    """sha256 of `path`, hashed once per process for a given size and modification time."""
    stat = Path(path).stat()
    key = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = file_sha256(path)
    return _DIGESTS[key]


# -- hub files ---------------------------------------------------------------------------------------
def hub_file(repo: str, filename: str, *, label: str, local_hint: str, fetch: bool = True) -> Path | None:
    """The local path of `filename` from hub repository `repo`: the cached copy, else downloaded.

    Args:
        repo: the hub repository (`chendelong/RemoteCLIP`).
        filename: the file in it (`RemoteCLIP-ViT-B-32.pt`, `ckpt/RS5M_ViT-B-32.pt`).
        label: the backbone, for messages.
        local_hint: how to pass a copy instead (`--backbone NAME:/path/to/FILE`), for messages.
        fetch: download when absent; False returns None instead (a dry run downloads nothing).

    Offline, the lookup is `hf_hub_download(local_files_only=True)`; online, a cached copy is used without
    asking the hub (a sweep's workers each resolve the file), and only an absent one is downloaded.

    Raises:
        UsageError: absent and offline (one line: repository, file, the `hf download` command, where the
            cache is), or the download failed.
    """
    offline = offline_variable()
    if not fetch:
        return hub_cached_file(repo, filename)
    if not offline:
        found = hub_cached_file(repo, filename)  # cached: no round trip to the hub
        if found is not None:
            return found
        log.info("backbone %s: downloading %s from %s into %s", label, filename, repo, hf_cache_dir())
    from huggingface_hub import hf_hub_download

    try:
        # offline, the hub client resolves the cached snapshot itself (refs/main -> snapshots/<rev>/<file>)
        return Path(hf_hub_download(repo, filename, cache_dir=str(hf_cache_dir()), local_files_only=bool(offline)))
    except Exception as exc:  # noqa: BLE001 - network, HTTP and hub errors come in many types; each stops here
        if offline:
            raise UsageError(
                f"cannot load backbone {label}: {offline} is set and the Hugging Face cache ({hf_cache_dir()}) lacks "
                f"{filename} of {repo}: {hub_fetch_advice([(repo, filename)])}, or {local_hint}"
            ) from None
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"cannot download {filename} of {repo} for backbone {label} ({first}); {local_hint}") from None


# -- local files and archives ------------------------------------------------------------------------
def is_archive(path: Path) -> bool:
    """A release archive to unpack (`.zip`), rather than a checkpoint (torch's own files are zips too)."""
    return Path(path).suffix.lower() in ARCHIVE_SUFFIXES


def archive_member(archive: Path, preferred: str = "") -> zipfile.ZipInfo:
    """The checkpoint inside a release archive: the one member named `preferred`, else its only checkpoint.

    Raises:
        UsageError: not a zip, no checkpoint in it, or several with none (or more than one) named `preferred`.
    """
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [
                info
                for info in zf.infolist()
                if not info.is_dir()
                and not info.filename.startswith("__MACOSX/")
                and info.filename.lower().endswith(MEMBER_SUFFIXES)
            ]
    except (OSError, zipfile.BadZipFile) as exc:
        raise UsageError(f"backbone archive {archive}: not a readable zip file ({exc})") from None
    named = [info for info in members if PurePosixPath(info.filename).name == preferred] if preferred else []
    picked = named or members
    if len(picked) == 1:
        return picked[0]
    if not picked:
        raise UsageError(f"backbone archive {archive} holds no checkpoint file ({', '.join(MEMBER_SUFFIXES)})")
    shown = ", ".join(info.filename for info in picked[:4]) + (", ..." if len(picked) > 4 else "")
    raise UsageError(
        f"backbone archive {archive} holds {len(picked)} checkpoint files ({shown}); extract the one you mean and "
        "pass its path"
    )


def unpacked(archive: Path, preferred: str = "") -> tuple[Path, str]:
    """The checkpoint member of a release archive as a file in the cache (extracted on first use), and its source.

    The extracted file is keyed by the member's CRC-32 and size (read from the zip's directory, no
    decompression) and written atomically; its digest is computed while it is written.
    """
    archive = Path(archive).expanduser().resolve()
    info = archive_member(archive, preferred)
    source = f"{archive}!{info.filename}"
    folder = cache_dir() / "backbones" / "unpacked" / f"{info.CRC:08x}-{info.file_size}"
    target = folder / PurePosixPath(info.filename).name
    if target.is_file() and target.stat().st_size == info.file_size:
        return target, source
    log.info("backbone archive %s: extracting %s into %s", archive, info.filename, target.parent)
    digest = hashlib.sha256()

    def write(tmp: str) -> None:
        with zipfile.ZipFile(archive) as zf, zf.open(info) as src, open(tmp, "wb") as dst:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                digest.update(chunk)
                dst.write(chunk)

    try:
        replace_atomically(target, write)
    except (OSError, zipfile.BadZipFile) as exc:  # a CRC mismatch is a BadZipFile
        raise UsageError(f"backbone archive {archive}: cannot extract {info.filename} ({exc})") from None
    stat = target.stat()
    _DIGESTS[(str(target.resolve()), stat.st_size, stat.st_mtime_ns)] = digest.hexdigest()
    return target, source


def local_file(text: str, member: str = "") -> tuple[Path, str]:
    """A user's checkpoint path, or the checkpoint inside a release archive: (file to load, source).

    `member`: the checkpoint's file name inside an archive (`epoch_20.pt`), when it may hold several.
    """
    path = Path(text).expanduser()
    if is_archive(path):
        return unpacked(path, member)
    return path, str(path.resolve())


# -- trust on first use ------------------------------------------------------------------------------
def trust_path() -> Path:
    """The trust record: `<cache>/backbones/trusted.json`."""
    return cache_dir() / "backbones" / TRUST_FILE


def _read_trust(path: Path) -> dict[str, dict[str, str]]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise UsageError(f"backbone trust record {path} is unreadable ({exc}); delete it to start afresh") from None
    entries = data.get("trusted") if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        raise UsageError(f"backbone trust record {path} has no 'trusted' table; delete it to start afresh")
    return entries


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive flock on `<path>.lock` for a read-modify-write of `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def check_trust(name: str, source: str, sha256: str, *, record: bool = True) -> None:
    """Record the digest of (backbone `name`, `source`) on first use (`record`), refuse a different one later.

    Raises:
        UsageError: the recorded digest differs (one line with both digests and how to trust the new file).
    """
    path, key = trust_path(), f"{name} {source}"
    with _LOCK, _file_lock(path):  # threads of this process, and other sweeps on the same cache
        entries = _read_trust(path)
        known = entries.get(key)
        if known is None and not record:  # a dry run trusts nothing it has not loaded
            return
        if known is None:
            entries[key] = {"sha256": sha256, "first_use": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            body = json.dumps({"version": 1, "trusted": entries}, indent=1, sort_keys=True) + "\n"

            def write(tmp: str) -> None:
                Path(tmp).write_text(body)

            replace_atomically(path, write)
            log.warning(
                "backbone %s: trusting sha256 %s of %s on first use (recorded in %s)", name, sha256, source, path
            )
            return
    if known.get("sha256") != sha256:
        raise UsageError(
            f"backbone {name}: {source} has sha256 {sha256}, but {known.get('sha256')} was trusted on first use "
            f"({known.get('first_use', 'unknown date')}); if the new weights are intended, delete the entry "
            f"{key!r} from {path} and run again"
        )
