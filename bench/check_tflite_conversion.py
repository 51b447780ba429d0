"""Check the TFLite -> transformers MobileNetV2 conversion against the TFLite interpreter itself.

    pip install ai-edge-litert   # provides the interpreter; not a project dependency
    python bench/check_tflite_conversion.py [--n_natural 100] [--n_mri 100]

Images: deterministic crops and flips of the two photographs shipped with scikit-learn (ImageNet-like
content, where predictions are confident) and real MRI slices from the shared data (grayscale and far
from ImageNet, so the top classes are often near-ties: a harsh test of small numerical differences).

1. Layer by layer: every convolution (and the classifier) of the converted model gets the uint8 input
   the interpreter computed for that layer; its output, rounded to the layer's uint8 scale and zero
   point, should equal the interpreter's output. This checks each weight, bias, layout, stride and
   padding on its own, without 8-bit rounding errors piling up over 53 layers.
2. End to end: both models get the same 224 x 224 uint8 pixels (the converted model as
   (x - 128) / 128, the TFLite input's definition). The float model never rounds activations, the
   interpreter rounds 53 times, so predictions differ where the top two classes are nearly tied.
   A second row rounds the converted model's activations like the interpreter (to show how much of
   the gap that explains); the printed margin says how close to a tie the disagreements are.
3. Preprocessing: which image-processor settings reproduce the input the TFLite model expects? The
   interpreter gets TF-slim's eval preprocessing for this model (central 87.5 % crop, bilinear resize
   to 224 x 224); the converted model gets each candidate processor's output for the original image.
"""

import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tflite
import torch
from PIL import Image
from transformers import HfArgumentParser, MobileNetV2ForImageClassification, MobileNetV2ImageProcessorPil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from brain_tumor.pretrained.mobilenet_v2_tflite import (  # noqa: E402
    build_image_processor,
    convert_tflite_to_transformers,
    tflite_layer_map,
    tflite_operators,
)
from bench.common import natural_images  # noqa: E402
from brain_tumor.pretrained.sources import default_tflite_path  # noqa: E402

DEFAULT_TFLITE_PATH = default_tflite_path()

try:
    from ai_edge_litert.interpreter import Interpreter
except ImportError:  # the check is meaningless without the reference implementation
    sys.exit("This check needs the TFLite interpreter: pip install ai-edge-litert")


@dataclass
class CheckArguments:
    tflite: str = field(default=str(DEFAULT_TFLITE_PATH), metadata={"help": "The quantized MobileNetV2 .tflite file."})
    mri_dir: str = field(
        default=str(Path(__file__).resolve().parents[2] / "shared/data/brain-tumor-mri-v1/Testing"),
        metadata={"help": "A folder of class sub-folders of MRI slices (the first files of each are used)."},
    )
    n_natural: int = field(default=100, metadata={"help": "Number of crops/flips of the scikit-learn photographs."})
    n_mri: int = field(default=100, metadata={"help": "Number of MRI slices, split evenly over the class folders."})
    n_layerwise: int = field(default=8, metadata={"help": "Images (half natural, half MRI) for the layer check."})


def mri_images(folder: Path, n: int) -> list[Image.Image]:
    classes = sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    if not classes:
        raise SystemExit(f"No class folders of MRI slices in {folder}; pass --mri_dir DIR or --n_mri 0.")
    files = [f for c in classes for f in sorted(c.glob("*.jpg"))[: -(-n // len(classes))]][:n]
    return [Image.open(f).convert("RGB") for f in files]


def tf_slim_eval_input(image: Image.Image) -> np.ndarray:
    """TF-slim's eval preprocessing for MobileNet: keep the central 87.5 % of each side, resize to 224."""
    width, height = image.size
    box = (width * 0.0625, height * 0.0625, width * 0.9375, height * 0.9375)
    return np.asarray(image.convert("RGB").resize((224, 224), Image.Resampling.BILINEAR, box=box))


def graph_ops(tflite_path: str) -> list[tuple[str, int, tuple, int, tuple]]:
    """(kind, input tensor, (scale, zero point), output tensor, (scale, zero point)) for the ops that
    matter here, in execution order; kind is "conv" (incl. depthwise and classifier), "add" or "pool"."""
    kinds = {
        tflite.BuiltinOperator.CONV_2D: "conv",
        tflite.BuiltinOperator.DEPTHWISE_CONV_2D: "conv",
        tflite.BuiltinOperator.ADD: "add",
        tflite.BuiltinOperator.AVERAGE_POOL_2D: "pool",
    }
    flat = tflite.Model.GetRootAsModel(Path(tflite_path).read_bytes(), 0)
    graph = flat.Subgraphs(0)
    ops = []
    for _, op, opcode in tflite_operators(flat):
        kind = kinds.get(opcode)
        if kind:
            qin, qout = (graph.Tensors(t).Quantization() for t in (op.Inputs(0), op.Outputs(0)))
            grid_in, grid_out = (qin.Scale(0), qin.ZeroPoint(0)), (qout.Scale(0), qout.ZeroPoint(0))
            ops.append((kind, op.Inputs(0), grid_in, op.Outputs(0), grid_out))
    return ops


def to_uint8(x: torch.Tensor, scale: float, zero_point: int) -> torch.Tensor:
    """Round like the interpreter's requantization (clamping to 0..255 also applies the fused ReLU6)."""
    return torch.clamp(torch.round(x.double() / scale) + zero_point, 0, 255)


@torch.inference_mode()
def layerwise_check(model, tflite_path: str, pixels: np.ndarray) -> str:
    """Feed each weighted layer the interpreter's own input; count identical uint8 outputs."""
    convs = [op for op in graph_ops(tflite_path) if op[0] == "conv"]
    layers = [layer for _, layer in tflite_layer_map(model)]
    interpreter = Interpreter(model_path=tflite_path, num_threads=2, experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    same, total, worst, largest = 0, 0, 1.0, 0
    for image in pixels:
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image[None])
        interpreter.invoke()
        for (_, t_in, (s_in, z_in), t_out, (s_out, z_out)), layer in zip(convs, layers):
            x = torch.from_numpy((interpreter.get_tensor(t_in).astype(np.float32) - z_in) * s_in).permute(0, 3, 1, 2)
            y = layer(x.flatten(1)) if isinstance(layer, torch.nn.Linear) else layer(x).permute(0, 2, 3, 1)
            expected = torch.from_numpy(interpreter.get_tensor(t_out).astype(np.float64)).reshape(y.shape)
            diff = (to_uint8(y, s_out, z_out) - expected).abs()
            same, total = same + int((diff == 0).sum()), total + diff.numel()
            worst, largest = min(worst, float((diff == 0).double().mean())), max(largest, int(diff.max()))
    return (
        f"{len(layers)} layers x {len(pixels)} images: {100 * same / total:.4f} % of uint8 outputs identical "
        f"(worst layer/image {100 * worst:.3f} %), largest difference {largest} step(s)"
    )


def simulate_8bit_activations(model, tflite_path: str) -> list:
    """Round every conv / add / pool output of the converted model to the matching TFLite tensor's
    uint8 grid. Returns the hook handles; remove them to get the float model back."""
    ops = graph_ops(tflite_path)
    modules = {
        "conv": [layer for _, layer in tflite_layer_map(model)],  # the classifier's output is the logits
        "add": [block for block in model.mobilenet_v2.layer if block.use_residual],
        "pool": [model.mobilenet_v2.pooler],
    }
    handles = []
    for kind, layers in modules.items():
        grids = [out_q for k, _, _, _, out_q in ops if k == kind]
        if len(layers) != len(grids):
            raise SystemExit(f"{tflite_path}: {len(grids)} {kind} outputs, the converted model has {len(layers)}.")
        for layer, (scale, zero) in zip(layers, grids):
            hook = lambda module, inputs, out, s=scale, z=zero: ((to_uint8(out, s, z) - z) * s).float()
            handles.append(layer.register_forward_hook(hook))
    return handles


def tflite_probabilities(tflite_path: str, pixels: np.ndarray) -> np.ndarray:
    interpreter = Interpreter(model_path=tflite_path, num_threads=2)
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    scale, zero_point = out["quantization"]
    probs = []
    for image in pixels:
        interpreter.set_tensor(inp["index"], image[None])
        interpreter.invoke()
        probs.append((interpreter.get_tensor(out["index"])[0].astype(np.float64) - zero_point) * scale)
    return np.stack(probs)


@torch.inference_mode()
def torch_logits(model, pixel_values: torch.Tensor, batch_size: int = 25) -> np.ndarray:
    batches = pixel_values.split(batch_size)
    chunks = [model(pixel_values=batch).logits for batch in batches]
    return torch.cat(chunks).double().numpy()


def compare(reference: np.ndarray, logits: np.ndarray, groups: dict[str, slice]) -> str:
    """Top-1 agreement, probability correlation and the largest top-1/top-2 logit margin (of the
    converted model) among disagreements, per image group, as one table row."""
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    top2 = np.sort(logits, axis=1)[:, -2:]
    cells = []
    for rows in groups.values():
        differ = reference[rows].argmax(axis=1) != probs[rows].argmax(axis=1)
        corr = np.corrcoef(reference[rows].ravel(), probs[rows].ravel())[0, 1]
        margin = (top2[rows, 1] - top2[rows, 0])[differ].max(initial=0.0)
        cells.append(f"{100 * (1 - differ.mean()):6.1f} % {corr:8.5f} {margin:6.2f}")
    return " | ".join(cells)


def main():
    (args,) = HfArgumentParser(CheckArguments).parse_args_into_dataclasses()

    natural = natural_images(args.n_natural)
    mri = mri_images(Path(args.mri_dir), args.n_mri) if args.n_mri else []
    images = natural + mri
    groups = {f"natural ({len(natural)})": slice(0, len(natural)), f"MRI ({len(mri)})": slice(len(natural), None)}
    groups = {name: rows for name, rows in groups.items() if len(images[rows])} | {f"all ({len(images)})": slice(None)}

    # Convert through the public API and load what it wrote, so the check covers the saved files.
    with tempfile.TemporaryDirectory() as tmp:
        convert_tflite_to_transformers(args.tflite, tmp)
        model = MobileNetV2ForImageClassification.from_pretrained(tmp).eval()
        saved_processor = MobileNetV2ImageProcessorPil.from_pretrained(tmp)
    reference_pixels = np.stack([tf_slim_eval_input(image) for image in images])  # N x 224 x 224 x 3 uint8

    print("1. Layer by layer, each layer given the interpreter's own uint8 input")
    half = args.n_layerwise // 2
    some = np.concatenate([reference_pixels[: min(half, len(natural))], reference_pixels[len(natural) :][:half]])
    print(f"   {layerwise_check(model, args.tflite, some)}")

    reference = tflite_probabilities(args.tflite, reference_pixels)
    header = " | ".join(f"{name}: top-1 agree, prob corr, max margin" for name in groups)
    print(f"\n2. End to end, identical 224 x 224 uint8 pixels to both models\n   {header}")
    same_pixels = torch.from_numpy(reference_pixels).permute(0, 3, 1, 2).float().sub(128).div(128)
    row = compare(reference, torch_logits(model, same_pixels), groups)
    print(f"   {'float activations (the converted model)':<50}{row}")
    handles = simulate_8bit_activations(model, args.tflite)
    row = compare(reference, torch_logits(model, same_pixels), groups)
    print(f"   {'activations rounded to 8 bits like TFLite':<50}{row}")
    for handle in handles:
        handle.remove()

    print(f"\n3. Image processor on the original image vs the interpreter on TF-slim eval input\n   {header}")
    base = build_image_processor().to_dict()
    candidates = {
        "saved: squash 256, crop 224, mean=std=128/255": saved_processor,
        "squash 256, crop 224, mean=std=0.5": {"image_mean": [0.5] * 3, "image_std": [0.5] * 3},
        "short side 256, crop 224 (HF default geometry)": {"size": {"shortest_edge": 256}},
        "squash 224, no crop (whole image)": {"size": {"height": 224, "width": 224}, "do_center_crop": False},
    }
    for name, candidate in candidates.items():  # a saved processor, or changes to the saved settings
        processor = candidate
        if not isinstance(candidate, MobileNetV2ImageProcessorPil):
            processor = MobileNetV2ImageProcessorPil(**{**base, **candidate})
        pixel_values = processor(images, return_tensors="pt")["pixel_values"]
        print(f"   {name:<50}{compare(reference, torch_logits(model, pixel_values), groups)}")
    print("\n   max margin: the converted model's largest top-1/top-2 logit gap among images where the two")
    print("   models disagree (the interpreter's logits move in steps of about 0.1).")


if __name__ == "__main__":
    main()
