"""`python -m benchmark list`: methods, protocols, datasets and named backbones (no torch), or presets.

`list presets` imports the method modules (their presets are Python objects), so it is not part of `list all`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

KINDS = ["all", "methods", "protocols", "datasets", "backbones", "presets"]


def add_parser(sub) -> None:
    """Add `list` to the CLI."""
    p = sub.add_parser(
        "list",
        help="list methods, protocols, datasets, named backbones (no torch import) or presets",
        epilog="examples:\n  python -m benchmark list\n  python -m benchmark list datasets --profile paper\n"
        "  python -m benchmark list presets coop",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("what", nargs="?", default="all", choices=KINDS, help="what to list (default all, presets apart)")
    p.add_argument("method", nargs="?", default=None, help="`list presets METHOD`: one method's presets only")
    p.add_argument("--profile", default="world", help="profile of the datasets and default presets (default world)")
    p.set_defaults(handler=cmd_list)


def cmd_list(args) -> int:
    """`list`: registered names with one-line summaries."""
    from benchmark.plan.profiles import get_profile
    from benchmark.registry import METHODS, PROTOCOLS

    profile = get_profile(args.profile)  # an unknown profile is an error whatever is listed

    if args.what in ("all", "methods"):
        print("methods:")
        width = max(map(len, METHODS.names()), default=0)
        for name in METHODS.names():
            print(f"  {name:<{width}}  {METHODS.summary(name)}")
    if args.what in ("all", "protocols"):
        print("protocols:")
        width = max(map(len, PROTOCOLS.names()), default=0)
        for name in PROTOCOLS.names():
            aliases = PROTOCOLS.aliases_of(name)
            extra = f" (aliases: {', '.join(aliases)})" if aliases else ""
            print(f"  {name:<{width}}  {PROTOCOLS.summary(name)}{extra}")
    if args.what in ("all", "datasets"):
        print(f"datasets ({profile.name} profile):")
        rows = [
            (name, f"{spec.folder}/{spec.split_file}", f"{len(spec.classnames)} classes" if spec.classnames else
             "classes from the split file")
            for name, spec in profile.datasets.items()
        ]  # fmt: skip
        for line in aligned(rows):
            print(f"  {line}")
    if args.what == "presets":
        names = [METHODS.canonical(args.method)] if args.method else METHODS.names()
        print(f"presets (* the default on the {profile.name} profile; --preset NAME or METHOD=NAME):")
        rows = []
        for name in names:
            cls = METHODS.get(name)
            default = cls.default_preset(profile.name, "b2n")
            rows += [
                (name, f"{key}{' *' if key == default else ''}", preset.source) for key, preset in cls.presets.items()
            ]
        for line in aligned(rows):
            print(f"  {line}")
    if args.what in ("all", "backbones"):
        print("backbones (--backbone NAME, any case; also any open_clip MODEL[:TAG] or MODEL:FILE):")
        for line in backbone_table():
            print(f"  {line}")
        print(
            "  NAME:FILE loads a local copy of a named backbone's file; `your file` ones need it (checkpoint or .zip)"
        )
    return 0


def aligned(rows: list[tuple[str, ...]]) -> list[str]:
    """Rows as text with every column but the last padded to its widest cell."""
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return ["  ".join([*(cell.ljust(w) for cell, w in zip(row, widths)), row[-1]]).rstrip() for row in rows]


def backbone_table() -> list[str]:
    """The named backbones, one row each: name, architecture, source, format, whether the weights are local."""
    from benchmark.backbone.registry import BACKBONES

    rows = [("name", "architecture", "source", "format", "local")]
    rows += [(e.name, e.architecture, e.where, e.format_text, _local(e)) for e in BACKBONES.values()]
    rows += _world_rows()
    return aligned(rows)


def _world_rows() -> list[tuple[str, ...]]:
    """The embedded world's backbones: committed tiny CLIPs (no torch import: paths only)."""
    from benchmark.backbone.load import WORLD_BACKBONES

    assets = Path(__file__).resolve().parents[1] / "world" / "assets"
    files = {"world": "world_clip.pt", "world-rs": "world_clip_rs.pt"}
    what = {"world": "generic corpus", "world-rs": "corpus with the four sensors"}
    return [
        (name, "tiny ViT", f"committed {files[name]} ({what[name]})", "sha256-checked state_dict",
         "committed" if (assets / files[name]).is_file() else "missing")
        for name in WORLD_BACKBONES
    ]  # fmt: skip


def _local(entry) -> str:
    """Whether the weights are in the local caches (no network, no torch)."""
    from benchmark.backbone.hub_cache import first_cached

    if entry.source == "hf_hub":
        state = "cached" if first_cached([("hf", (entry.repo, entry.filename))]) else "not cached"
    elif entry.source == "open_clip":
        state = "cached" if first_cached(entry.locations) else "not cached"
    else:
        state = "your file"
    return state if entry.supported else f"{state}; not runnable (a ResNet image tower)"
