"""Does the heat map point at the tumour? Saliency maps against expert tumour masks.

    python bench/localization.py [--model FOLDER] [--method gradcam@final] [--limit N]
    python bench/localization.py --compare-methods      # every method, one pass per batch
    python bench/localization.py --write-model-json     # also MODEL/localization.json (for the app)
    python bench/localization.py --split validation --method M   # on the validation split, to choose M

Masks: `../shared/data/brain-tumor-mri-v1-masks` (BRISC 2025 expert masks for 851 of the 906
official test tumour slices, 224 x 224 like the slices; see its DATASET.md). The maps come through
`Predictor` exactly as users get them (`Prediction.saliency`, aligned with the decoded slice), for
the predicted class. Per slice:

- pointing game: the map's peak lies inside the mask dilated by 15 px (Euclidean; the usual margin
  at 224 px); strict: inside the mask itself. An all-zero map misses.
- mass in mask: the share of the map's sum that lies inside the (undilated) mask; with
  --compare-methods also at half-max: of the part of the map above half its peak, as a method's
  `+halfmax` shows it.

Baselines, scored the same way: `centre`, a Gaussian peaking at the slice centre (sigma a quarter of
the side); `random`, a Gaussian blob (sigma an eighth of the side) centred at a seeded, uniformly
random point of the slice. Splits: the official test and the clean test (bench/common.py's `load_test_sets`), per
class and overall; or, with `--split validation`, the model's own validation split as its data_recipe.json cut it
(v1 Training/ slices whose masks the mask loss never saw), where a method can be chosen without the tests.
Writes bench/results/<name>.md/.json, a picture of 16 clean-test (or validation) slices (<name>_grid.png), and
with --compare-methods localization_methods.md/.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from datasets import Image as DatasetImage
from PIL import Image
from scipy.ndimage import distance_transform_edt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    DEFAULT_DATASET, REPO_ROOT, RESULTS_DIR, load_test_sets, machine_info, markdown_table, print_machine, write_results,
)
from brain_tumor import DEFAULT_MODEL  # noqa: E402
from brain_tumor.inference import Predictor  # noqa: E402
from brain_tumor.labels import canonical_label  # noqa: E402
from brain_tumor.recipe import load_splits, read_recipe  # noqa: E402
from brain_tumor.saliency import DEFAULT_METHOD, SMOOTHINGS, SaliencyMethod, all_methods  # noqa: E402

DEFAULT_MASKS = "../shared/data/brain-tumor-mri-v1-masks"
TUMOURS = ("glioma", "meningioma", "pituitary")
MARGIN = 15  # px at 224 px


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help="model folder (default: the embedded model)")
    parser.add_argument("--dataset", default=DEFAULT_DATASET, help="Kaggle-layout folder, from the repository root")
    parser.add_argument("--masks", default=DEFAULT_MASKS, help="the masks folder, from the repository root")
    parser.add_argument("--method", default=None, help=f"saliency method (default: Predictor's, {DEFAULT_METHOD})")
    parser.add_argument("--compare-methods", action="store_true", help="score every method (slower)")
    parser.add_argument("--write-model-json", action="store_true",
                        help="write MODEL/localization.json (clean test, overall) for the app's caption")
    parser.add_argument("--split", choices=("test", "validation"), default="test",
                        help="test: the official and clean tests (default); validation: the model's own validation "
                             "split (from its data_recipe.json; masks never trained on), to choose a method on")
    parser.add_argument("--limit", type=int, default=None, help="seeded, stratified N images per test split")
    parser.add_argument("--seed", type=int, default=0, help="seed of --limit, the random baseline and the grid")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--latency_images", type=int, default=40, help="images timed for the extra latency")
    parser.add_argument("--output_name", default="localization")
    args = parser.parse_args(argv)
    if args.split == "validation" and (args.compare_methods or args.write_model_json or args.limit):
        parser.error("--split validation scores one method on all of it: drop --compare-methods, "
                     "--write-model-json and --limit")
    return args


# --- scoring --------------------------------------------------------------------------------------


def centre_map(height: int, width: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    sigma = min(height, width) / 4
    return np.exp(-(((x - (width - 1) / 2) ** 2 + (y - (height - 1) / 2) ** 2) / (2 * sigma**2))).astype(np.float32)


def random_map(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    cx, cy = rng.uniform(0, width - 1), rng.uniform(0, height - 1)
    sigma = min(height, width) / 8
    return np.exp(-(((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2))).astype(np.float32)


def score(saliency: np.ndarray | None, mask: np.ndarray, near: np.ndarray) -> dict:
    """Pointing (mask dilated by MARGIN), strict pointing, mass in mask for one map."""
    if saliency is None or saliency.max() <= 0:
        return {"pointing": 0.0, "strict": 0.0, "mass": 0.0, "mass_halfmax": 0.0}
    if saliency.shape != mask.shape:
        raise SystemExit(f"a saliency map is {saliency.shape} but its mask is {mask.shape}: not aligned")
    peak = np.unravel_index(int(saliency.argmax()), saliency.shape)
    shown = np.clip(saliency / saliency.max() - 0.5, 0, None)  # saliency.half_max, as `+halfmax` shows it
    return {"pointing": float(near[peak]), "strict": float(mask[peak]),
            "mass": float(saliency[mask].sum() / saliency.sum()), "mass_halfmax": float(shown[mask].sum() / shown.sum())}


def split_paths(args) -> dict[str, list[str]]:
    """{split: image paths}: the two test splits, or the model's validation split cut as training cut it."""
    if args.split == "test":
        return {name: tests.paths for name, tests in load_test_sets(args.dataset, args.limit, args.seed).items()}
    recipe = read_recipe(args.model)
    if recipe is None:
        raise SystemExit(f"--split validation needs the model's data_recipe.json; {args.model} has none")
    validation = load_splits(recipe).validation.cast_column("image", DatasetImage(decode=False))
    return {"validation": [row["path"] for row in validation["image"]]}


def load_cases(args) -> tuple[list[dict], dict[str, list[str]]]:
    """Tumour slices that have a mask: path, class, mask, dilated mask; and each split's paths."""
    masks_root = (REPO_ROOT / args.masks).resolve()
    folder = "Testing" if args.split == "test" else "Training"  # v1's validation rows come from Training/
    if not (masks_root / folder).is_dir():
        raise SystemExit(f"--masks {args.masks!r} ({masks_root}) has no {folder}/ folder of masks")
    cases, members = {}, {}
    for split, paths in split_paths(args).items():
        members[split] = []
        for path in paths:
            path = Path(path)
            if path.parent.parent.name != folder:  # another collection's slice: no expert mask
                continue
            label = canonical_label(path.parent.name)
            mask_path = masks_root / folder / path.parent.name / f"{path.stem}.png"
            if label not in TUMOURS or not mask_path.is_file():
                continue
            if str(path) not in cases:
                mask = np.asarray(Image.open(mask_path).convert("L")) > 127
                near = distance_transform_edt(~mask) <= MARGIN
                cases[str(path)] = {"path": str(path), "label": label, "mask": mask, "near": near}
            members[split].append(str(path))
    return list(cases.values()), members


def summarise(scores: dict[str, dict], cases: list[dict], members: dict[str, list[str]],
              keys=("pointing", "strict", "mass", "mass_halfmax")) -> dict:
    """{split: {class or "overall": {"n", "pointing", "strict", "mass"}}}: the mean of each key."""
    label_of = {case["path"]: case["label"] for case in cases}
    out = {}
    for split, paths in members.items():
        out[split] = {}
        for group in (*TUMOURS, "overall"):
            chosen = [p for p in paths if group == "overall" or label_of[p] == group]
            out[split][group] = {"n": len(chosen), **{
                key: float(np.mean([scores[p][key] for p in chosen])) if chosen else float("nan")
                for key in keys}}
    return out


# --- output ---------------------------------------------------------------------------------------


def _pct(x: float) -> str:
    return "n/a" if x != x else f"{100 * x:.1f}"


def main_table(results: dict, mask_share: dict) -> str:
    header = ["split", "class", "n", "map: pointing", "map: strict", "map: mass in mask",
              "centre: pointing", "centre: strict", "centre: mass", "random: pointing", "random: strict",
              "random: mass", "mask area"]
    rows = []
    for split in results["map"]:
        for group in (*TUMOURS, "overall"):
            cells = [split, group, results["map"][split][group]["n"]]
            for kind in ("map", "centre", "random"):
                cells += [_pct(results[kind][split][group][k]) for k in ("pointing", "strict", "mass")]
            rows.append(cells + [_pct(mask_share[split][group])])
    return markdown_table(header, rows)


def methods_table(by_method: dict, baselines: dict) -> str:
    header = ["method", "clean: pointing", "clean: strict", "clean: mass", "clean: mass at half-max", "clean: glioma",
              "clean: meningioma", "clean: pituitary", "official: pointing", "official: strict", "official: mass",
              "official: mass at half-max"]
    keys = ("pointing", "strict", "mass", "mass_halfmax")
    rows = []
    for name, result in [*by_method.items(), *((f"*{k} baseline*", v) for k, v in baselines.items())]:
        clean, official = result["clean_test"], result["official_test"]
        rows.append([name, *(_pct(clean["overall"][k]) for k in keys), *(_pct(clean[c]["pointing"]) for c in TUMOURS),
                     *(_pct(official["overall"][k]) for k in keys)])
    return markdown_table(header, rows)


def grid_picks(cases, members, seed: int) -> list[dict]:
    """16 clean-test (or validation) slices for the picture, seeded: 6 glioma, 5 meningioma, 5 pituitary."""
    rng = np.random.default_rng(seed)
    pictured = set(members.get("clean_test", members.get("validation", [])))
    picks = []
    for label, count in zip(TUMOURS, (6, 5, 5)):
        pool = [c for c in cases if c["label"] == label and c["path"] in pictured]
        picks += [pool[i] for i in sorted(rng.choice(len(pool), min(count, len(pool)), replace=False))]
    return picks


def draw_grid(picks, maps, scores, path: Path, method: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(4, 4, figsize=(10, 10.6))
    for ax in axes.flat:
        ax.axis("off")
    for ax, case in zip(axes.flat, picks):
        saliency = maps[case["path"]]
        ax.imshow(Image.open(case["path"]).convert("L"), cmap="gray")
        ax.imshow(np.ma.masked_less(saliency, 0.05), cmap="inferno", alpha=0.55, vmin=0, vmax=1)
        ax.contour(case["mask"], levels=[0.5], colors="cyan", linewidths=1.0)
        hit = scores[case["path"]]["pointing"] > 0
        y, x = np.unravel_index(int(saliency.argmax()), saliency.shape)
        ax.plot(x, y, marker="x", markersize=11, mew=2.5, color="lime" if hit else "red")
        ax.set_title(f"{case['label']}: {'hit' if hit else 'miss'}", fontsize=9)
    fig.suptitle(f"{method} (clean test). Cyan: expert mask; x: the map's peak (green: within {MARGIN} px)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    plt.close(fig)


def extra_latency(predictor: Predictor, paths: list[str], method: str) -> dict:
    """Median single-image time of predict() with and without the map (file to Prediction)."""
    default, predictor.saliency_method = predictor.saliency_method, method
    timings = {False: [], True: []}
    try:
        for heatmap in (False, True, False, True):  # interleaved, so a load change hits both alike
            predictor.predict(paths[0], heatmap=heatmap)  # warm-up
            for path in paths:
                start = time.perf_counter()
                predictor.predict(path, heatmap=heatmap)
                timings[heatmap].append(time.perf_counter() - start)
    finally:
        predictor.saliency_method = default
    plain, mapped = (1000 * float(np.median(timings[k])) for k in (False, True))
    return {"method": method, "images": len(paths), "without_map_ms": round(plain, 1),
            "with_map_ms": round(mapped, 1), "extra_ms": round(mapped - plain, 1),
            "load_average_1min": round(os.getloadavg()[0], 2)}


def latency_line(latency: dict) -> str:
    return (f"`{latency['method']}`: {latency['without_map_ms']} ms without the map, {latency['with_map_ms']} ms "
            f"with, **+{latency['extra_ms']} ms** (load {latency['load_average_1min']})")


def ranking(by_method: dict) -> list[str]:
    """Methods by clean-test pointing, then official-test pointing (the clean test is the honest one)."""
    def key(name):
        return tuple(by_method[name][split]["overall"]["pointing"] for split in ("clean_test", "official_test"))

    return sorted(by_method, key=key, reverse=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    info = machine_info()
    print_machine(info)
    kwargs = {"saliency_method": args.method} if args.method else {}
    predictor = Predictor.from_pretrained(args.model, **kwargs)
    method = predictor.saliency_method
    cases, members = load_cases(args)
    paths = [case["path"] for case in cases]
    print(f"{len(cases)} masked tumour slices ({', '.join(f'{s} {len(m)}' for s, m in members.items())}); "
          f"model {args.model}; method {method}", flush=True)

    # Scored batch by batch: 37 maps of every slice at once would not fit in memory.
    # Compared as drawn: the half-max column shows what `+halfmax` would make of each map.
    drawn = str(replace(SaliencyMethod.parse(method), halfmax=False))
    methods = list(dict.fromkeys([method, drawn, *all_methods()])) if args.compare_methods else [method]
    picks = grid_picks(cases, members, args.seed)
    shown = {case["path"] for case in picks}
    map_scores, maps_shown = {m: {} for m in methods}, {}  # only the pictured slices' maps are kept
    start = time.perf_counter()
    for first in range(0, len(cases), args.batch_size):
        batch = cases[first : first + args.batch_size]
        if args.compare_methods:
            per_image = predictor.saliency_by_method([c["path"] for c in batch], methods, args.batch_size)
        else:  # what users get: Prediction.saliency
            predictions = predictor.predict_batch([c["path"] for c in batch], args.batch_size, heatmap=True)
            per_image = [{method: p.saliency} for p in predictions]
        for case, maps in zip(batch, per_image):
            for m in methods:
                map_scores[m][case["path"]] = score(maps.get(m), case["mask"], case["near"])
            if case["path"] in shown:
                maps_shown[case["path"]] = maps.get(method)
        if (first // args.batch_size) % 10 == 9:
            print(f"  {first + len(batch)} of {len(cases)} slices, {time.perf_counter() - start:.0f} s", flush=True)
    seconds = time.perf_counter() - start
    print(f"maps in {seconds:.0f} s", flush=True)

    rng = np.random.default_rng(args.seed)
    baselines = {"centre": {}, "random": {}}
    for case in cases:
        shape = case["mask"].shape
        for kind, baseline in (("centre", centre_map(*shape)), ("random", random_map(*shape, rng))):
            baselines[kind][case["path"]] = score(baseline, case["mask"], case["near"])

    results = {"map": summarise(map_scores[method], cases, members)}
    results.update({kind: summarise(scores, cases, members) for kind, scores in baselines.items()})
    areas = summarise({c["path"]: {"area": float(c["mask"].mean())} for c in cases}, cases, members, ("area",))
    mask_share = {split: {group: v["area"] for group, v in groups.items()} for split, groups in areas.items()}
    latency = extra_latency(predictor, paths[: args.latency_images], method)

    table = main_table(results, mask_share)
    title = f"# Localization of `{method}` on expert tumour masks ({Path(args.model).resolve().name})"
    notes = (f"Pointing: peak within {MARGIN} px of the mask (Euclidean); strict: inside it; mass: share of the map "
             "inside the mask; mask area: share of the slice the mask covers (the mass a uniform map would get). "
             "Figures in %.\n\nExtra latency of the map, median single predict() from file to Prediction over "
             f"{latency['images']} test images ({info['cpu']}, {info['torch_threads']} torch threads): "
             + latency_line(latency) + ".")
    command = f"python bench/localization.py {' '.join(argv or sys.argv[1:])}".strip()
    markdown = f"{title}\n\n{table}\n\n{notes}\n\nCommand: `{command}`"
    print("\n" + markdown)
    payload = {"machine": info, "model": str(args.model), "method": method, "margin_px": MARGIN,
               "limit": args.limit, "seconds_for_maps": round(seconds, 1), "latency": latency,
               "results": results, "mask_area": mask_share}
    write_results(args.output_name, payload, markdown)
    grid = RESULTS_DIR / f"{args.output_name}_grid.png"
    draw_grid(picks, maps_shown, map_scores[method], grid, method)
    print(f"Wrote {grid}")

    if args.compare_methods:
        by_method = {m: summarise(map_scores[m], cases, members) for m in methods if not SaliencyMethod.parse(m).halfmax}
        order = ranking(by_method)
        best = SaliencyMethod.parse(order[0])
        # What the smoothing costs: the best CAM and layer at each smoothing, and the plain Grad-CAM.
        timed = list(dict.fromkeys(["gradcam@final"] + [str(SaliencyMethod(best.cam, best.layer, smoothing))
                                                         for smoothing in SMOOTHINGS]))
        latencies = [extra_latency(predictor, paths[: args.latency_images], m) for m in timed]
        clean, official = (by_method[order[0]][split]["overall"] for split in ("clean_test", "official_test"))
        table = methods_table({m: by_method[m] for m in order}, {k: results[k] for k in ("centre", "random")})
        markdown = (f"# Saliency methods compared ({Path(args.model).resolve().name}, figures in %)\n\n"
                    f"Sorted by clean-test pointing, then official-test pointing. Best: **`{order[0]}`** "
                    f"(clean test {_pct(clean['pointing'])}, strict {_pct(clean['strict'])}, mass "
                    f"{_pct(clean['mass'])}; official test {_pct(official['pointing'])}); the centre baseline "
                    f"points {_pct(results['centre']['clean_test']['overall']['pointing'])} / "
                    f"{_pct(results['centre']['official_test']['overall']['pointing'])}.\n\n{table}\n\n"
                    f"Pointing with a {MARGIN} px margin; the clean-test columns per class are pointing.\n\n"
                    f"Extra latency of the map per predict() (median over {args.latency_images} test images, "
                    f"{info['cpu']}, {info['torch_threads']} torch threads):\n\n"
                    + "\n".join(f"- {latency_line(latency)}" for latency in latencies)
                    + f"\n\nCommand: `{command}`")
        print("\n" + markdown)
        write_results(f"{args.output_name}_methods", {"machine": info, "model": str(args.model), "limit": args.limit,
                                                      "ranking": order, "latency": latencies,
                                                      "results": by_method}, markdown)
    if args.write_model_json:
        clean = results["map"]["clean_test"]["overall"]
        summary = {"method": method, "split": "clean_test", "pointing_game": round(clean["pointing"], 4),
                   "pointing_game_strict": round(clean["strict"], 4), "mass_in_mask": round(clean["mass"], 4),
                   "centre_baseline_pointing_game": round(results["centre"]["clean_test"]["overall"]["pointing"], 4),
                   "margin_px": MARGIN, "slices": clean["n"]}
        (Path(args.model) / "localization.json").write_text(json.dumps(summary, indent=2) + "\n")
        print(f"Wrote {Path(args.model) / 'localization.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
