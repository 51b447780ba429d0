"""`python -m brain_tumor predict FILES_OR_DIRS [--model M] [--output out.csv|out.json] [--saliency-dir DIR]`.

`add_predict_parser(subparsers)` declares the flags (the CLI entry point parses them);
`predict_command(args)` runs the subcommand and returns an exit status (0: all classified,
1: some files could not be read, 2: nothing could run). A file that cannot be
read gets a row with its error instead of stopping the run: one damaged file in a folder of
thousands should not cost the rest.

With `--saliency-dir`, each classified file also gets its saliency map (`Prediction.saliency`, the
slice's height x width, float32 in [0, 1]) as `DIR/<path relative to the inputs>.npy`, or with
`--saliency-format png` the heat-map picture drawn from it; the row's `saliency_file` names it.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path

from .. import DEFAULT_MODEL

# Folders are searched for these (and for extension-less files, which is how many DICOM
# exports are named). Files given explicitly are always tried, whatever their name.
SCAN_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".dcm", ".dicom", ".nii", ".nii.gz")


def add_predict_parser(subparsers):
    parser = subparsers.add_parser(
        "predict",
        help="classify scan files or folders of them",
        description="Classify brain MRI slices (JPEG, PNG, BMP, TIFF, DICOM, NIfTI) and write CSV or JSON.",
    )
    parser.add_argument("inputs", nargs="+", metavar="FILES_OR_DIRS",
                        help="scan files, or folders searched recursively")
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help="model folder or Hugging Face Hub id (default: the embedded model)")
    parser.add_argument("--output", default=None,
                        help="write results to this .csv or .json file (default: CSV on standard output)")
    parser.add_argument("--slice", type=int, default=None, dest="slice_index",
                        help="slice of 3-D volumes to classify (default: the middle one)")
    parser.add_argument("--batch-size", type=int, default=16, help="images per forward pass")
    parser.add_argument("--saliency-dir", default=None, metavar="DIR",
                        help="also write each file's saliency map (where the evidence for the predicted "
                             "class lies, aligned with the decoded slice) into this folder")
    parser.add_argument("--saliency-format", choices=("npy", "png"), default="npy",
                        help="npy: the float32 map in [0, 1]; png: the heat map drawn over the slice")
    parser.add_argument("--compile", action="store_true",
                        help="compile the model for answering first (torch.compile; tens of seconds, once per batch "
                             "size): worth it for thousands of files without --saliency-dir; the same answers")
    parser.set_defaults(handler=predict_command)
    return parser


def collect_files(inputs) -> list[Path]:
    """Expand folders (recursively, sorted, hidden files skipped) and keep explicit files."""
    files = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            for found in sorted(path.rglob("*")):
                hidden = any(part.startswith(".") for part in found.relative_to(path).parts)
                name = found.name.lower()
                if found.is_file() and not hidden and (name.endswith(SCAN_SUFFIXES) or "." not in name):
                    files.append(found)
        else:
            files.append(path)  # a missing file becomes an error row, not a crash
    return files


def saliency_paths(files: list[Path], folder: str, suffix: str) -> list[Path]:
    """One output path per input: its path below the inputs' common folder, plus the suffix
    (`a.jpg` -> `a.jpg.npy`, so `a.jpg` and `a.png` beside it cannot collide)."""
    resolved = [f.resolve() for f in files]
    root = Path(os.path.commonpath([f.parent for f in resolved])) if resolved else Path()
    return [Path(folder) / f"{f.relative_to(root)}.{suffix}" for f in resolved]


def _save_saliency(prediction, path: Path, fmt: str) -> str:
    import numpy as np

    if prediction.saliency is None:  # a model whose layers give no spatial map
        return ""
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "png":
        prediction.heatmap.save(path)
    else:
        np.save(path, prediction.saliency)
    return str(path)


def predict_command(args) -> int:
    from tqdm import tqdm

    from ..imaging import ScanError, load_slice
    from ..inference import ModelLoadError, Predictor

    if args.output and not args.output.lower().endswith((".csv", ".json")):
        print(f"--output must end in .csv or .json, not {args.output!r}", file=sys.stderr)
        return 2
    files = collect_files(args.inputs)
    if not files:
        print("No scan files found in the given paths.", file=sys.stderr)
        return 2
    try:
        predictor = Predictor.from_pretrained(args.model, compile=args.compile)
    except ModelLoadError as error:
        print(error, file=sys.stderr)
        return 2

    outputs = saliency_paths(files, args.saliency_dir, args.saliency_format) if args.saliency_dir else None
    records: list[dict] = [{} for _ in files]  # filled by position, so output keeps input order
    with tqdm(total=len(files), unit="file", desc="predict", file=sys.stderr) as progress:
        for start in range(0, len(files), args.batch_size):
            loaded = []
            for position in range(start, min(start + args.batch_size, len(files))):
                try:
                    loaded.append((position, load_slice(files[position], slice_index=args.slice_index)))
                except ScanError as error:
                    records[position] = {"path": str(files[position]), "error": str(error)}
            predictions = predictor.predict_batch([scan for _, scan in loaded], batch_size=args.batch_size,
                                                heatmap=bool(outputs))
            for (position, _), prediction in zip(loaded, predictions):
                saved = _save_saliency(prediction, outputs[position], args.saliency_format) if outputs else ""
                records[position] = {"path": str(files[position]), **prediction.as_record(),
                                     "saliency_file": saved, "error": ""}
            progress.update(min(args.batch_size, len(files) - start))
    _write(records, predictor.labels, args.output)
    failed = sum(bool(r["error"]) for r in records)
    print(f"{len(records) - failed} classified, {failed} could not be read.", file=sys.stderr)
    return 1 if failed else 0  # scripts can tell that some rows hold errors


def _write(records: list[dict], labels: list[str], output: str | None) -> None:
    if output and output.lower().endswith(".json"):
        Path(output).write_text(json.dumps(records, indent=2) + "\n")
        return
    columns = ["path", "label", "probability", *(f"p_{name}" for name in labels),
               "uncertain", "not_mri", "slice_index", "num_slices", "reasons", "saliency_file", "error"]
    handle = open(output, "w", newline="") if output else sys.stdout
    try:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for record in records:
            row = dict(record)
            for name, p in record.get("probabilities", {}).items():
                row[f"p_{name}"] = f"{p:.6f}"
            if "probability" in row:
                row["probability"] = f"{row['probability']:.6f}"
            writer.writerow(row)
    finally:
        if output:
            handle.close()
