#!/usr/bin/env python
"""Do the Trainer's evaluation, `pipeline()` and the app's `Predictor` give a slice the same answer?

A leave-one-out run's held-out recall reads a few slices apart from the Trainer's own evaluation
(`bench/leave_one_out.py`) and from `bench/operating_points.py` / `bench/collections_eval.py`, which
read through `Predictor` as the app does. This script answers each held-out slice of a leave-one-out
model folder four ways and names the slices whose answers differ:

- `trainer`: the eval transform of training (`transforms.make_eval_transform`: the decoded image
  `.convert("RGB")`, then the model's image processor);
- `pipeline`: `pipeline("image-classification")` on the file, as its users call it;
- `predictor`: `inference.Predictor` on the file (the app, the CLI and the two benchmarks above);
- `trainer_on_predictor_decoding`: the eval transform on the image as `Predictor` decodes it
  (`imaging.load_slice`, which turns a near-gray RGB picture into one gray channel): when it agrees
  with `predictor` everywhere, the decoding is what sets the two apart.

    python bench/reading_paths.py --model runs/loo_cpu_mirror/loo/mnv2-aug-mask-transplant-t2grow2dim-prior-e12-seed43
"""

from __future__ import annotations

import argparse
import sys
from itertools import combinations
from pathlib import Path

import numpy as np
from datasets import Image as DatasetImage
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import markdown_table, write_results  # noqa: E402
from bench.operating_points import leave_one_out_run, slices_where  # noqa: E402
from bench.predictors import PipelinePredictor  # noqa: E402
from brain_tumor.imaging import load_slice  # noqa: E402
from brain_tumor.labels import CLASS_NAMES  # noqa: E402
from brain_tumor.transforms import make_eval_transform  # noqa: E402

PATHS = ("trainer", "pipeline", "predictor", "trainer_on_predictor_decoding")


def trainer_answers(model, image_processor, images: list, batch_size: int = 64, decode=None) -> list[str]:
    """The arg max the Trainer's evaluation computes, through the eval transform training set. With `decode`,
    `images` are files, decoded a batch at a time (all of them at once would hold every file open)."""
    import torch

    transform = make_eval_transform(image_processor)
    answers = []
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        chunk = [decode(item) for item in chunk] if decode else chunk
        batch = transform({"image": chunk, "label": [0] * len(chunk)})
        with torch.inference_mode():
            logits = model(pixel_values=torch.stack(batch["pixel_values"])).logits
        answers += [model.config.id2label[int(i)] for i in logits.argmax(dim=-1)]
    return answers


def answers_four_ways(folder: str, predictor, files: list[str]) -> dict[str, list[str]]:
    """{path name: the answer for each file}, the answers as the model's labels."""
    model, processor = predictor.model, predictor.image_processor
    pipeline = PipelinePredictor(folder, Path(folder).name)
    return {
        "trainer": trainer_answers(model, processor, files, decode=_decoded_as_datasets_does),
        "pipeline": [CLASS_NAMES[i] for i in pipeline.predict(files).argmax(axis=1)],
        "predictor": [p.label for p in predictor.predict_batch(files, batch_size=32)],
        "trainer_on_predictor_decoding": trainer_answers(model, processor, files, decode=lambda f: load_slice(f).image),
    }


def _decoded_as_datasets_does(path: str) -> Image.Image:
    """`PIL.Image.open`, as the `datasets` Image feature decodes a file, read at once so the file is closed."""
    with Image.open(path) as image:
        image.load()
    return image


def disagreements(files: list[str], answers: dict[str, list[str]]) -> dict[str, list[str]]:
    """{"a vs b": [file: answer a / answer b, ...]} for each pair of reading paths."""
    return {f"{a} vs {b}": [f"{Path(f).name}: {x} / {y}" for f, x, y in zip(files, answers[a], answers[b]) if x != y]
            for a, b in combinations(PATHS, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a leave-one-out model folder")
    parser.add_argument("--output_name", default=None, help="file name stem under bench/results/")
    args = parser.parse_args()

    _, splits, predictor = leave_one_out_run(args.model)
    held = slices_where(splits.held_out, tumour=True).cast_column("image", DatasetImage(decode=False))
    files = [row["path"] for row in held["image"]]
    answers = answers_four_ways(args.model, predictor, files)
    differ = disagreements(files, answers)
    found = {name: float(np.mean([a != "notumor" for a in answers[name]])) for name in PATHS}
    table = markdown_table(["reading path", "held-out tumour recall"], [[n, f"{found[n]:.4f}"] for n in PATHS])
    pairs = markdown_table(["pair", "answers that differ", "slices"],
                           [[pair, len(items), "; ".join(items[:12]) + (" ..." if len(items) > 12 else "")]
                            for pair, items in differ.items()])
    markdown = (f"# Reading paths of `{args.model}` on its {len(files)} held-out tumour slices\n\n"
                f"{table}\n\n{pairs}\n\n"
                f"Command: `python bench/reading_paths.py --model {args.model}`")
    print(markdown)
    write_results(args.output_name or f"reading_paths_{Path(args.model).name}",
                  {"model": args.model, "files": len(files), "recall": found, "differ": differ}, markdown)


if __name__ == "__main__":
    main()
