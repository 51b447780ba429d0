#!/usr/bin/env python
"""Does the same seed give the same weights?

One recipe of a recipes file (default: the shipped default's recipe, seed 44, Br35H held out, as its held-out runs
train), cut to a few optimizer steps, trained twice as it is and twice with `--full_determinism` (a
`TrainingArguments` flag: `torch.use_deterministic_algorithms`). Writes the largest weight difference between the two
runs of each pair, and each run's training time, to bench/results/<name>.md. About 12 minutes on 2 CPU cores.

    python bench/determinism.py --steps 4
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.leave_one_out import RESULTS_DIR, load_recipes, run_command, train  # noqa: E402

ARMS = {"as is": [], "full determinism": ["--full_determinism"]}


def largest_difference(first: Path, second: Path) -> float:
    a, b = (load_file(folder / "model.safetensors") for folder in (first, second))
    return max((a[key].float() - b[key].float()).abs().max().item() for key in a)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", default="bench/recipes_cpu_originals.json")
    parser.add_argument("--recipe", default="mnv2-aug-mask-transplant-t2grow2dim-prior-e12-seed44")
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps of each run")
    parser.add_argument("--output_name", default="determinism", help="file name stem under bench/results/")
    args = parser.parse_args(argv)
    spec = load_recipes(args.recipes)
    # Later flags win: the recipe as it is, cut to a few steps, nothing evaluated or saved on the way.
    short = ["--max_steps", str(args.steps), "--eval_strategy", "no", "--save_strategy", "no",
             "--load_best_model_at_end", "false", "--max_eval_samples", "64"]
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for arm, extra in ARMS.items():
            runs = [Path(scratch) / f"{arm.replace(' ', '_')}-{run}" for run in (1, 2)]
            for output_dir in runs:
                flags = [*spec["recipes"][args.recipe], *short, *extra]
                name, _, code = train((arm, run_command(spec, flags, output_dir, hold_out=True), output_dir))
                if code:
                    raise SystemExit(f"{name}: train_hf.py failed, see {output_dir / 'train.log'}")
            seconds = [json.loads((run / "all_results.json").read_text())["train_runtime_s"] for run in runs]
            rows.append(f"| {arm} | {largest_difference(*runs):.3g} | {seconds[0]:.1f} / {seconds[1]:.1f} |")
    text = (f"# Same seed, same weights?\n\nCommand: `python bench/determinism.py {' '.join(argv or sys.argv[1:])}` "
            f"({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC). Recipe `{args.recipe}` of `{args.recipes}`, "
            f"held-out collections held out, {args.steps} optimizer steps, trained twice per row on this machine.\n\n"
            "| training | largest weight difference between the two runs | training time of each run (s) |\n"
            "|---|---|---|\n" + "\n".join(rows) + "\n")
    (RESULTS_DIR / f"{args.output_name}.md").write_text(text)
    print(text)
    return text


if __name__ == "__main__":
    main()
