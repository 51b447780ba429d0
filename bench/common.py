"""What the benchmark scripts share: flags, test images, the models to compare, machine facts, output.

Test images are read from the files of a local folder in the Kaggle layout, so latency includes
decoding the file, as it does for a user. The clean test is `make_splits`' (default seed and
twin threshold): the official test minus every image with a twin in the official training split.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image

from brain_tumor import DEFAULT_MODEL
from brain_tumor.data import load_brain_mri, subsample
from brain_tumor.splits import make_splits

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATASET = "../shared/data/brain-tumor-mri-v1"  # relative to the repository root
RESULTS_DIR = REPO_ROOT / "bench" / "results"


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", action="append", metavar="FOLDER",
                        help="a model folder pipeline() loads; repeat to compare several side by side "
                             f"(default: {Path(DEFAULT_MODEL).relative_to(REPO_ROOT)})")
    parser.add_argument("--peer", action="store_true", help="also measure the public peer, PyPI detect-tumor")
    parser.add_argument("--dataset", default=DEFAULT_DATASET,
                        help="local folder in the Kaggle layout (Training/<class>/, Testing/<class>/); "
                             "a relative path is read from the repository root")
    parser.add_argument("--limit", type=int, default=None,
                        help="use a seeded, class-stratified subset of N images per test split (quick checks)")
    parser.add_argument("--batch_size", type=int, default=32, help="batch size of batched predictions")
    parser.add_argument("--seed", type=int, default=0, help="seed of the --limit subsets (and of perturbations)")
    parser.add_argument("--output_name", default=None,
                        help="file name stem under bench/results/ (default: the script's name)")


@dataclass
class TestImages:
    paths: list[str]
    labels: np.ndarray


def _paths_and_labels(split) -> TestImages:
    from datasets import Image

    rows = split.cast_column("image", Image(decode=False))  # keep the file path, do not decode
    return TestImages([row["path"] for row in rows["image"]], np.asarray(rows["label"]))


def load_test_sets(dataset: str, limit: int | None, seed: int) -> dict[str, TestImages]:
    """{"official_test": ..., "clean_test": ...}, each as file paths and label ids."""
    folder = (REPO_ROOT / dataset).resolve()
    if not (folder / "Testing").is_dir():
        raise SystemExit(f"--dataset {dataset!r} ({folder}) is not a local folder in the Kaggle layout "
                         "(Training/<class>/, Testing/<class>/); the benchmarks read test images from files.")
    splits = make_splits(load_brain_mri(str(folder)))  # default seed and twin threshold, as training uses
    return {name: _paths_and_labels(subsample(getattr(splits, name), limit, seed))
            for name in ("official_test", "clean_test")}


def model_names(folders: list[str]) -> list[str]:
    """A column label per model: the folder name, with its parent when two names collide."""
    names = [Path(folder).resolve().name for folder in folders]
    return [f"{Path(f).resolve().parent.name}/{n}" if names.count(n) > 1 else n for f, n in zip(folders, names)]


def predictor_factories(args) -> list:
    """One zero-argument constructor per model, so each is built, measured and freed in turn:
    a model held in memory (an idle onnxruntime thread pool above all) would slow the next one."""
    from functools import partial

    from bench.predictors import AppRequestPredictor, DetectTumorPredictor, PipelinePredictor

    folders = args.model or [DEFAULT_MODEL]
    for folder in folders:
        if not (Path(folder) / "config.json").is_file():
            raise SystemExit(f"--model {folder!r} is not a model folder (no config.json); pass a folder "
                             "written by train_hf.py or save_pretrained, e.g. --model runs/smoke.")
    # latency_rounds.py may time one of the app's requests instead (the whole one, heat map included, or the
    # API's), and each model also as the app holds it.
    api_request = getattr(args, "api_request", False)
    if getattr(args, "full_request", False) or api_request:
        predictor = partial(AppRequestPredictor, heatmap=not api_request)
    else:
        predictor = PipelinePredictor
    named = list(zip(folders, model_names(folders)))
    factories = [partial(predictor, folder, name) for folder, name in named]
    if getattr(args, "channels_last_too", False):
        factories += [partial(predictor, folder, f"{name} (channels last)", channels_last=True)
                      for folder, name in named]
    if getattr(args, "folded_too", False):
        factories += [partial(predictor, folder, f"{name} (batch norm folded, channels last)", channels_last=True,
                              fold_batch_norm=True) for folder, name in named]
    if getattr(args, "compiled_too", False):
        # Through pipeline(): as saved, then compiled, a pipeline() user's one line (inductor folds the batch norms
        # itself). The app's API: folded, channels last, then compiled, as the app holds its default model.
        how = "folded, channels last, compiled" if api_request else "compiled"
        factories += [partial(predictor, folder, f"{name} ({how})", compile=True) for folder, name in named]
    return factories + ([DetectTumorPredictor] if args.peer else [])


def machine_info() -> dict:
    """Which machine and when: latency figures mean little without it."""
    import torch
    import transformers

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    info = {
        "date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores_usable": len(os.sched_getaffinity(0)),
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": round(os.getloadavg()[0], 2),  # > 0 means something else shares the CPU
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
    try:
        import onnxruntime
        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    return info


def machine_line(info: dict) -> str:
    return "Machine and time: " + ", ".join(f"{key} {value}" for key, value in info.items())


def print_machine(info: dict) -> None:
    print(machine_line(info), flush=True)


class Stopwatch:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


def markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    return "\n".join(lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows])


def write_results(stem: str, payload: dict, markdown: str) -> None:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / f"{stem}.json").write_text(json.dumps(payload, indent=2) + "\n")
    (RESULTS_DIR / f"{stem}.md").write_text(markdown + "\n")
    print(f"\nWrote {RESULTS_DIR / stem}.md and .json")


def natural_images(n: int) -> list[Image.Image]:
    """Deterministic random crops (10-100 % of the area, aspect 3:4 to 4:3) and flips of two photos."""
    rng = np.random.default_rng(0)
    from sklearn.datasets import load_sample_images

    photos = [Image.fromarray(a) for a in load_sample_images().images]
    views = []
    for i in range(n):
        photo = photos[i % len(photos)]
        width, height = photo.size
        area = rng.uniform(0.1, 1.0) * width * height
        aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
        w = int(min(width, np.sqrt(area * aspect)))
        h = int(min(height, np.sqrt(area / aspect)))
        x, y = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
        view = photo.crop((x, y, x + w, y + h))
        views.append(view.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else view)
    return views
