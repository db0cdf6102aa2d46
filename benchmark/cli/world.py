"""`python -m benchmark world {build,pretrain}`: generate the embedded world, or pretrain its tiny CLIP."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    """Add `world` to the CLI."""
    p = sub.add_parser("world", help="the embedded RS world: build it, or pretrain its tiny CLIP")
    p.add_argument("action", choices=["build", "pretrain"])
    p.add_argument("rest", nargs=argparse.REMAINDER, help="options of `world pretrain` (see --help there)")
    p.set_defaults(handler=cmd_world)


def cmd_world(args) -> int:
    """`world build` generates the datasets into the cache; `world pretrain` trains the tiny CLIP."""
    if args.action == "build":
        from benchmark.paths import cache_dir
        from benchmark.world import ensure_world

        print(ensure_world(cache_dir()))
        return 0
    from benchmark.world.pretrain import run_pretrain

    return int(run_pretrain(args.rest) or 0)
