"""`tidegate`: the one command-line face. Each command imports its heavy parts lazily.

Exit codes: 0 success (rejected records are not a failure), 2 usage errors, 1 anything else — always with
one clear line on stderr, and a traceback only with --debug.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from engine.errors import TidegateError

_COMMANDS = (
    "engine.cli.ingest",
    "engine.cli.watch",
    "engine.cli.schemas",
    "engine.cli.demo",
    "engine.cli.train",
    "engine.cli.models",
    "engine.cli.simulate",
    "engine.cli.run",
    "engine.cli.dashboard",  # IoT: issue 3
    "engine.cli.serve",
    "engine.cli.recommender",  # serving: issue 5
    "engine.cli.images",  # train-images: issue 6
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(2, f"tidegate: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = _Parser(prog="tidegate", description="Streaming-ML engine for edge gateways.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in _COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except TidegateError as exc:
        if args.debug:
            raise
        print(f"tidegate: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("tidegate: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
