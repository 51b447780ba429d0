#!/usr/bin/env python
"""A run's kept checkpoint, finished as train_hf.py finishes the model it serves.

After training, `train_hf.py` moves the no-tumour logit by the lesion transplant's label-shift correction (with
`--correct_transplant_prior`) and folds a temperature fitted on the validation split into the head. The checkpoints
it saves during training (`checkpoint-N/`, the best one kept) have neither. This script gives one both, from its
run: the correction the run recorded (`all_results.json`), then a temperature fitted again on the same validation
split (cut from the run's `data_recipe.json`). The folder it writes holds the run's image processor and data recipe
too, so `pipeline()` and every `bench/` script read it as they read the run. Its use: the best checkpoint of a run
trained with `--weight_average_from`, scored against the average the run served (the same trajectory, so the pair
differs by the averaging alone). The app's checks are not fitted: run `python -m brain_tumor fit-checks` on it for them.

    python bench/finalize_checkpoint.py --run runs/X --checkpoint runs/X/checkpoint-600 --output_dir runs/X-best
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from transformers import AutoImageProcessor, AutoModelForImageClassification, TrainingArguments

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from brain_tumor.labels import NOTUMOR_ID  # noqa: E402
from brain_tumor.modeling import shift_class_logit  # noqa: E402
from brain_tumor.recipe import load_splits, read_recipe, save_recipe  # noqa: E402
from brain_tumor.training import BrainTumorTrainer  # noqa: E402
from brain_tumor.transforms import collate, make_eval_transform  # noqa: E402
from train_hf import calibrate  # noqa: E402


def finalize(run: str, checkpoint: str, output_dir: str, batch_size: int = 128) -> dict:
    results_path, recipe = Path(run) / "all_results.json", read_recipe(run)
    if recipe is None or not results_path.is_file():
        raise SystemExit(f"{run}: needs the data_recipe.json and all_results.json that train_hf.py writes.")
    offset = json.loads(results_path.read_text()).get("transplant_prior_offset")
    model = AutoModelForImageClassification.from_pretrained(checkpoint)
    processor = AutoImageProcessor.from_pretrained(run)
    if offset is not None:
        shift_class_logit(model, NOTUMOR_ID, offset)
    validation = load_splits(recipe).validation.with_transform(make_eval_transform(processor))
    with tempfile.TemporaryDirectory() as scratch:  # the Trainer only predicts: nothing of it is kept
        args = TrainingArguments(output_dir=scratch, per_device_eval_batch_size=batch_size, report_to=[],
                                 remove_unused_columns=False)
        temperature, _, _ = calibrate(BrainTumorTrainer(model=model, args=args, data_collator=collate), validation)
    output = Path(output_dir)
    model.save_pretrained(output)
    processor.save_pretrained(output)
    save_recipe(recipe, output)
    summary = {"run": run, "checkpoint": checkpoint, "transplant_prior_offset": offset, "temperature": temperature}
    (output / "all_results.json").write_text(json.dumps(summary, indent=2))
    return summary


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="the finished run's folder (train_hf.py --output_dir)")
    parser.add_argument("--checkpoint", required=True, help="a checkpoint folder the run saved")
    parser.add_argument("--output_dir", required=True, help="where the finished checkpoint is written")
    args = parser.parse_args(argv)
    summary = finalize(args.run, args.checkpoint, args.output_dir)
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
