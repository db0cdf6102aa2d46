"""Credentials for a sweep's MLflow server that listens beyond loopback.

Why: `--server-host 0.0.0.0` lets SLURM nodes or a Ray cluster log to the sweep's server, and MLflow's
plain server lets anyone on that network write or delete runs. Such a server runs MLflow's basic-auth
app with an admin user made for this sweep alone: a random name and password, written only to files
readable by their owner (0600, in a 0700 folder under the cache) and handed to workers through their
environment (`MLFLOW_TRACKING_USERNAME`/`MLFLOW_TRACKING_PASSWORD`, which MLflow's client reads). They
are never logged or put on a command line, and their folder is deleted when the server stops.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

USERNAME_ENV = "MLFLOW_TRACKING_USERNAME"
PASSWORD_ENV = "MLFLOW_TRACKING_PASSWORD"
AUTH_CONFIG_ENV = "MLFLOW_AUTH_CONFIG_PATH"  # where MLflow's basic-auth app reads its settings
SECRET_KEY_ENV = "MLFLOW_FLASK_SERVER_SECRET_KEY"


@dataclass(frozen=True)
class SweepCredentials:
    """One sweep's server admin and where its auth settings live."""

    username: str
    password: str
    config: Path  # the basic-auth ini (0600)
    secret_key: str  # signs the server's CSRF tokens (MLflow refuses to start the auth app without one)

    def __repr__(self) -> str:  # never show the password, not even in a traceback
        return f"SweepCredentials(username={self.username!r}, config={str(self.config)!r})"


def _prune_dead(parent: Path) -> None:
    """Remove the credential folders of sweeps on this host whose process is gone (a SIGKILLed sweep)."""
    for folder in parent.glob("sweep-*-*"):
        pid = folder.name.split("-")[1]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except PermissionError:  # another user's live process
            continue


def _private_file(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


@contextlib.contextmanager
def sweep_credentials(cache_root: Path) -> Iterator[SweepCredentials]:
    """Make an admin user for one sweep's server; its folder is removed afterwards.

    The auth store is a fresh SQLite file, so the basic-auth app creates exactly this admin on start,
    and every request without these credentials is refused (`default_permission = NO_PERMISSIONS`).
    """
    parent = Path(cache_root) / "server-auth"
    parent.mkdir(parents=True, exist_ok=True)
    _prune_dead(parent)
    folder = Path(os.path.realpath(parent / f"sweep-{os.getpid()}-{secrets.token_hex(4)}"))
    folder.mkdir(mode=0o700)
    try:
        credentials = SweepCredentials(
            f"sweep-{secrets.token_hex(4)}", secrets.token_urlsafe(24), folder / "auth.ini", secrets.token_hex(32)
        )
        _private_file(
            credentials.config,
            "[mlflow]\n"
            "default_permission = NO_PERMISSIONS\n"
            f"database_uri = sqlite:///{folder / 'auth.db'}\n"
            f"admin_username = {credentials.username}\n"
            f"admin_password = {credentials.password}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
            # One server process: cache the PBKDF2 check instead of paying it on every request.
            "auth_cache_ttl_seconds = 3600\n",
        )
        yield credentials
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def client_credentials(credentials: SweepCredentials | None) -> Iterator[None]:
    """Put the credentials in this process's environment (inherited by the workers it starts), then restore."""
    if credentials is None:
        yield
        return
    saved = {key: os.environ.get(key) for key in (USERNAME_ENV, PASSWORD_ENV)}
    os.environ[USERNAME_ENV], os.environ[PASSWORD_ENV] = credentials.username, credentials.password
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def server_environment(credentials: SweepCredentials) -> dict[str, str]:
    """What the server process needs in its environment (not on its command line, which `ps` shows)."""
    return {AUTH_CONFIG_ENV: str(credentials.config), SECRET_KEY_ENV: credentials.secret_key}
