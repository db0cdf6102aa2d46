"""Command line: `python -m benchmark {run,leaderboard,list,ui,parity,world,...}`.

The only module that prints. Every handler returns an exit code: 0 success, 1 some cells failed,
2 bad input (one line on stderr, before any work starts).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from benchmark import __version__
from benchmark.cli import COMMANDS
from benchmark.errors import UsageError

log = logging.getLogger("benchmark")

EPILOG = """examples:
  python -m benchmark run --methods all --protocol b2n
  python -m benchmark run --methods coop,cocoop --datasets patternnet --seeds 1 --set epochs=5
  python -m benchmark run --protocol b2n --dry-run
  python -m benchmark run --protocol fewshot --methods zeroshot,coop --shots 1,4,16
  python -m benchmark leaderboard
  python -m benchmark leaderboard --protocol b2n --from-runs results/runs_b2n.csv
  python -m benchmark compare coop zeroshot --protocol b2n
  python -m benchmark reproduce --protocol b2n --methods coop
  python -m benchmark run --executor local --workers 2 --config sweep.yaml
  python -m benchmark list methods
  python -m benchmark parity ../shared/parity/*.pt
  python -m benchmark ui
"""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    parser = _Parser(
        prog="benchmark",
        description="Prompt-learning benchmark harness for CLIP on remote sensing.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for module in COMMANDS:
        importlib.import_module(module).add_parser(sub)
    _verbose_everywhere(parser)
    _examples_everywhere(parser)
    return parser


#: An example per subcommand without its own epilog (`--help` ends with it).
EXAMPLES = {
    "run": "python -m benchmark run --methods coop,cocoop --datasets patternnet --seeds 1 --set epochs=5",
    "leaderboard": "python -m benchmark leaderboard --protocol b2n --matrix",
    "compare": "python -m benchmark compare coop zeroshot --protocol b2n",
    "reproduce": "python -m benchmark reproduce --protocol b2n --methods coop",
    "parity": "python -m benchmark parity ../shared/parity/*.pt tests/parity/*.pt",
    "data": "python -m benchmark data check --data-root /data/rs",
    "check": "python -m benchmark data check --data-root /data/rs --datasets patternnet --json",
    "shots": "python -m benchmark data shots --datasets patternnet --seed 1 --shots 16",
}


def _examples_everywhere(parser: argparse.ArgumentParser) -> None:
    """Give every subcommand's help an example (its own epilog, or one from `EXAMPLES`)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                if not child.epilog and name in EXAMPLES:
                    child.epilog = f"example: {EXAMPLES[name]}"
                _examples_everywhere(child)


def _verbose_everywhere(parser: argparse.ArgumentParser) -> None:
    """Accept `-v/--verbose` after any subcommand too (`run ... -v`), not only before it.

    SUPPRESS as the default keeps a subcommand from resetting a `-v` given before it.
    """
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                if "--verbose" not in child._option_string_actions:
                    child.add_argument(
                        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logging"
                    )
                _verbose_everywhere(child)


class _BarSafeHandler(logging.StreamHandler):
    """Writes records with `tqdm.write`, which clears and redraws an active progress bar around them."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


def _configure_logging(verbose: bool, quiet: bool) -> None:
    import os

    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "DEBUG" if verbose else "WARNING")
    if quiet or not sys.stderr.isatty():  # hub downloads' and transformers' weight-loading bars, workers included
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    # On a terminal a log line goes through the progress bar's writer, above the bar instead of through it.
    handlers = [_BarSafeHandler()] if sys.stderr.isatty() else None
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S", handlers=handlers
    )
    for noisy in ("mlflow", "alembic", "urllib3", "filelock", "httpx", "git"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
        _configure_logging(args.verbose, getattr(args, "quiet", False))
        return args.handler(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `... | head`: the reader has gone; say nothing more
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
