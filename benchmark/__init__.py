"""Benchmark harness for prompt learning on CLIP in remote sensing.

The package is importable without torch: heavy modules are imported where they are used, so
`python -m benchmark list` stays fast and works on a machine without a GPU stack.
"""

from __future__ import annotations

__version__ = "0.1.0"
