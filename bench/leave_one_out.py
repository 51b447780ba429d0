#!/usr/bin/env python
"""Leave one collection out: how each training recipe does on slices from a collection it never saw.

For every recipe in a recipes file, `train_hf.py` trains on the training collections with the
held-out collection given as `--held_out_dataset` (never trained on; its slices that twin a training
collection's are dropped). With `--full`, each recipe is also trained on every collection (the
candidate default model). The table puts the held-out figures (tumour recall and specificity, per
plane where file names tell it) beside the benchmark's clean and official test, so recipes are
chosen by generalisation, never by the official test alone.

    python bench/leave_one_out.py --recipes bench/recipes.json                  # train, then report
    python bench/leave_one_out.py --recipes bench/recipes.json --report_only    # table from finished runs
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO_ROOT / "bench" / "results"
sys.path.insert(0, str(REPO_ROOT))
from brain_tumor.labels import CLASS_NAMES  # noqa: E402


def load_recipes(path: str | Path) -> dict:
    """A recipes file. One with "common_from": "<sibling file>" starts from that file's common flags and adds
    its own "common" ones, so the settings that every run of a machine shares are written once."""
    path = Path(path)
    spec = json.loads(path.read_text())
    if "common_from" in spec:
        spec["common"] = [*load_recipes(path.parent / spec["common_from"])["common"], *spec.get("common", [])]
    return spec


def run_command(spec: dict, recipe_flags: list[str], output_dir: Path, hold_out: bool) -> list[str]:
    """train_hf.py on every collection, or (hold_out) on all but the held-out ones, which it only evaluates."""
    held_out = spec["held_out"] if hold_out else []
    datasets = [name for name in spec["datasets"] if name not in held_out]
    held = ["--held_out_dataset", *held_out] if held_out else []
    return [sys.executable, str(REPO_ROOT / "train_hf.py"), "--dataset_name", *datasets, *held, *spec["common"],
            *recipe_flags, "--output_dir", str(output_dir)]


def train(job: tuple[str, list[str], Path]) -> tuple[str, float, int]:
    name, command, output_dir = job
    output_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    with open(output_dir / "train.log", "w") as log:
        code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT).returncode
    return name, time.time() - started, code


def fmt(value) -> str:
    return "" if value is None else f"{value:.3f}"


def report_rows(name: str, loo: dict | None, full: dict | None) -> list[str]:
    held = next(iter((loo or {}).get("held_out_by_collection", {}).values()), {})
    planes = held.get("by_plane", {})
    plane_text = ", ".join(f"{p} {fmt(m.get('notumor_specificity', m.get('tumour_recall')))}"
                           for p, m in planes.items())
    cells = [name, fmt(held.get("tumour_recall")), fmt(held.get("notumor_specificity")), plane_text,
             str(held.get("images", "")),
             fmt((loo or {}).get("clean_test", {}).get("accuracy")), loo_specificity(loo),
             fmt((full or {}).get("clean_test", {}).get("accuracy")),
             fmt((full or {}).get("official_test", {}).get("accuracy"))]
    other = (full or {}).get("clean_test_by_collection", {})
    cells.append("; ".join(f"{c}: recall {fmt(m.get('tumour_recall'))} spec {fmt(m.get('notumor_specificity'))}"
                           for c, m in other.items() if c != next(iter(other), None)))
    return cells


def loo_specificity(loo: dict | None) -> str:
    """No-tumour specificity of the LOO run on every collection's test split that has no-tumour slices:
    the v1 official test (its clean test keeps only 30 of them) and the others' clean tests."""
    if not loo:
        return ""
    collections = list(loo.get("official_test_by_collection", {}))
    sources = [(collections[0], loo["official_test_by_collection"])] if collections else []
    sources += [(c, loo.get("clean_test_by_collection", {})) for c in collections[1:]]
    return "; ".join(f"{c} {fmt(split[c].get('notumor_specificity'))}" for c, split in sources
                     if c in split and split[c].get("notumor_specificity") is not None)


def write_report(recipes: dict, root: Path, held_out: list[str], output_name: str) -> str:
    header = ["recipe", "held-out tumour recall", "held-out specificity", "held-out by plane", "held-out images",
              "clean test acc (LOO run)", "no-tumour specificity (LOO run: v1 official test, others' clean test)",
              "clean test acc (all collections)", "official test acc (all collections)",
              "other collections' clean test (all-collections run)"]
    lines = [f"Held out: {', '.join(held_out)}. Figures from each run's all_results.json under {root}.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    results = {name: tuple(_read(root / kind / name / "all_results.json") for kind in ("loo", "full"))
               for name in recipes}
    for name, (loo, full) in results.items():
        lines.append("| " + " | ".join(report_rows(name, loo, full)) + " |")
        flags = " ".join(recipes[name])
        lines.append(f"|  | `{flags}` |" + " |" * (len(header) - 2))
    lines += ["", "Per class and plane, each run (held out, and on all collections where trained): recall of each "
              "class on the primary collection's clean test; no-tumour specificity per plane on the other "
              "collections' clean tests (where file names give it).", ""]
    lines += per_class_rows(results)
    text = "\n".join(lines) + "\n"
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / f"{output_name}.md").write_text(text)
    return text


def per_class_rows(results: dict[str, tuple[dict | None, dict | None]]) -> list[str]:
    """One row per finished run, so a run trained on all collections only (a second seed) gets its row too."""
    rows = ["| recipe | run | " + " | ".join(f"clean test {c} recall" for c in CLASS_NAMES)
            + " | specificity by plane |", "|---|---|" + "---|" * (len(CLASS_NAMES) + 1)]
    for name, runs in results.items():
        for kind, run in zip(("held out", "all collections"), runs):
            if run is None:
                continue
            recalls = [fmt(run.get("clean_test", {}).get(f"recall_{c}")) for c in CLASS_NAMES]
            planes = "; ".join(f"{collection} {plane} {fmt(m.get('notumor_specificity'))}"
                               for collection, entry in run.get("clean_test_by_collection", {}).items()
                               for plane, m in entry.get("by_plane", {}).items())
            rows.append(f"| {name} | {kind} | " + " | ".join(recalls) + f" | {planes} |")
    return rows


def _read(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", required=True,
                        help='JSON file: {"common": [flags for every run], "held_out": [collections], '
                             '"recipes": {name: [flags]}}; "common_from": "<file>" adds that file\'s common flags')
    parser.add_argument("--output_root", default="runs/leave_one_out", help="run folders: <root>/{loo,full}/<recipe>")
    parser.add_argument("--only", action="append", help="run only these recipes (repeat)")
    parser.add_argument("--full", action="store_true",
                        help="also train on every collection the recipes the file's 'full' list names (or all)")
    parser.add_argument("--full_only", action="store_true",
                        help="only the --full runs, no held-out run (a second seed of a candidate)")
    parser.add_argument("--parallel", type=int, default=1, help="runs at once (a GPU machine fits several)")
    parser.add_argument("--report_only", action="store_true", help="only write the table from finished runs")
    parser.add_argument("--output_name", default="leave_one_out", help="file name stem under bench/results/")
    args = parser.parse_args()

    spec = load_recipes(args.recipes)
    recipes = {k: v for k, v in spec["recipes"].items() if not args.only or k in args.only}
    root = (REPO_ROOT / args.output_root).resolve()
    if not args.report_only:
        # Full runs first: they are the candidate default models.
        full = [name for name in spec.get("full", recipes) if name in recipes] if args.full or args.full_only else []
        jobs = [(f"full/{name}", run_command(spec, recipes[name], root / "full" / name, False), root / "full" / name)
                for name in full]
        jobs += [(f"loo/{name}", run_command(spec, flags, root / "loo" / name, True), root / "loo" / name)
                 for name, flags in recipes.items() if not args.full_only]
        if not jobs:  # e.g. --full_only for a recipe the file's "full" list leaves out
            parser.error(f"no run to train: check --only against the recipes (and 'full' list) of {args.recipes}")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        with ThreadPoolExecutor(args.parallel) as pool:
            for name, seconds, code in pool.map(train, jobs):
                print(f"{name}: exit {code} after {seconds:.0f} s", flush=True)
    print(write_report(recipes, root, spec["held_out"], args.output_name))


if __name__ == "__main__":
    main()
