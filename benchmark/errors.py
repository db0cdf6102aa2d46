"""Exceptions that carry a user-facing message.

`UsageError` is raised for bad input that is detected before any work starts; the CLI prints its
message as one line and exits with code 2. `RunFailure` marks a cell as FAILED at run time.
"""

from __future__ import annotations


class UsageError(Exception):
    """Bad input (unknown name, malformed file, bad number): one line, exit code 2."""


class RunFailure(Exception):
    """A runtime failure of one cell (non-finite loss, out of memory): the run is marked FAILED."""
