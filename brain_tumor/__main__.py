"""Command line: `python -m brain_tumor {audit,fit-checks,predict,convert} ...` (the commands live in `cli/`)."""

from __future__ import annotations

import argparse
import sys

from .cli.convert import add_convert_parser
from .cli.predict import add_predict_parser
from .cli.splits import add_split_parsers


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m brain_tumor", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    add_split_parsers(commands)
    add_predict_parser(commands)
    add_convert_parser(commands)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except ValueError as error:  # our loaders raise ValueError subclasses with user-facing messages
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
