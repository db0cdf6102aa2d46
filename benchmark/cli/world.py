"""`python -m benchmark world {build,pretrain}`: generate the embedded world, or pretrain its tiny CLIP."""

from __future__ import annotations

import argparse

from benchmark.errors import UsageError

BUILD_HELP = """usage: benchmark world build

Generate the embedded world's eight datasets into the cache (BENCHMARK_CACHE), about 40 s on 2 cores.
Runs do it on first use; this command only does it ahead of time and prints where the world is.

example: python -m benchmark world build"""


def add_parser(sub) -> None:
    """Add `world build` and `world pretrain` to the CLI."""
    p = sub.add_parser(
        "world",
        help="the embedded RS world: build it, or pretrain its tiny CLIP",
        description="build: generate the world's datasets into the cache; pretrain: train a tiny CLIP"
        " (`world pretrain --help` lists its options)",
        epilog="examples:\n  python -m benchmark world build\n  python -m benchmark world pretrain --corpus rs"
        " --out world_clip_rs.pt",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("action", choices=["build", "pretrain"], help="build: the datasets; pretrain: a tiny CLIP")
    # `world pretrain` has its own parser (`benchmark.world.pretrain.parse_args`), which answers --help.
    p.add_argument("rest", nargs=argparse.REMAINDER, help="options of `world pretrain` (see --help there)")
    p.set_defaults(handler=cmd_world)


def cmd_world(args) -> int:
    """`world build` generates the datasets into the cache; `world pretrain` trains the tiny CLIP."""
    if args.action == "build":
        if args.rest in (["-h"], ["--help"]):
            print(BUILD_HELP)
            return 0
        if args.rest:
            raise UsageError(f"world build takes no arguments, got: {' '.join(args.rest)}")
        from benchmark.paths import cache_dir
        from benchmark.world import ensure_world

        print(ensure_world(cache_dir()))
        return 0
    from benchmark.world.pretrain import run_pretrain

    return int(run_pretrain(args.rest) or 0)
