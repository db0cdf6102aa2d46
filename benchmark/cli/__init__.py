"""Subcommands that live in their own module: each exposes `add_parser(subparsers)`.

`benchmark.cli.main` adds every module listed in `COMMANDS`; a handler set with `set_defaults(handler=...)`
receives the parsed arguments and returns an exit code (raise `UsageError` for bad input).
"""

COMMANDS: tuple[str, ...] = (
    "benchmark.cli.run",
    "benchmark.cli.leaderboard",
    "benchmark.cli.listing",
    "benchmark.cli.ui",
    "benchmark.cli.parity",
    "benchmark.cli.world",
    "benchmark.cli.data",
    "benchmark.cli.compare",
    "benchmark.cli.tune",
    "benchmark.cli.reproduce",
)
