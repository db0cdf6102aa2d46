"""Subcommands that live in their own module: each exposes `add_parser(subparsers)`.

`benchmark.cli` adds every module listed in `COMMANDS`; a handler set with `set_defaults(handler=...)`
receives the parsed arguments and returns an exit code (raise `UsageError` for bad input).
"""

COMMANDS: tuple[str, ...] = ("benchmark.commands.data", "benchmark.commands.compare")
