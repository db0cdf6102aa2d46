"""Write `tests/parity/index.json`: one record per fixture in that folder (what `test_parity` checks against).

Usage: `python tests/parity/generate/index.py` after adding or regenerating a fixture.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

FOLDER = Path(__file__).resolve().parents[1]


def record(path: Path) -> dict:
    """The index record of one fixture: identity, reference provenance, configuration and cases."""
    fixture = torch.load(path, map_location="cpu", weights_only=True)
    reference = fixture.get("reference", {})
    return {
        "file": path.name,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "bytes": path.stat().st_size,
        "method": fixture["method"],
        "config": fixture["config_name"],
        "trainer_config": fixture.get("trainer_config", {}),
        "classnames": list(fixture.get("classnames", [])),
        "reference": {"repo": reference.get("repo"), "commit": reference.get("commit")},
        "variants": list(fixture.get("variants") or {}),
    }


def main() -> None:
    """Rewrite the index from the fixture files."""
    records = [record(path) for path in sorted(FOLDER.glob("*.pt"))]
    (FOLDER / "index.json").write_text(json.dumps(records, indent=1, default=str) + "\n")
    print(f"{len(records)} fixtures indexed in {FOLDER / 'index.json'}")


if __name__ == "__main__":
    main()
