"""Subcommands that live in their own module: each exposes `add_parser(subparsers)`.

`benchmark.cli` adds every module listed in `COMMANDS`; a handler set with `set_defaults(handler=...)`
receives the parsed arguments and returns an exit code (raise `UsageError` for bad input).
"""

COMMANDS: tuple[str, ...] = (
    "benchmark.commands.run",
    "benchmark.commands.leaderboard",
    "benchmark.commands.listing",
    "benchmark.commands.ui",
    "benchmark.commands.parity",
    "benchmark.commands.world",
    "benchmark.commands.data",
    "benchmark.commands.compare",
    "benchmark.commands.tune",
    "benchmark.commands.reproduce",
)
