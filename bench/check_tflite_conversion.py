"""Check the TFLite -> transformers MobileNetV2 conversion against the TFLite interpreter itself.

    pip install ai-edge-litert   # provides the interpreter; not a project dependency
    python bench/check_tflite_conversion.py [--n_natural 100] [--n_mri 100]

Images: deterministic crops and flips of the two photographs shipped with scikit-learn (ImageNet-like
content, where predictions are confident and meaningful) and real MRI slices from the shared data
(grayscale and far from ImageNet: near-ties between classes, so a harder test of small differences).

Two questions, two tables:
1. Is the conversion faithful? Both models get the *same* 224 x 224 uint8 pixels (the PyTorch model
   as (x - 128) / 128, the TFLite input's own definition). Remaining disagreements should come only
   from the interpreter rounding every activation to 8 bits; a second row proves it by rounding the
   converted model's activations the same way (each TFLite tensor's scale and zero point), which
   should remove almost all of them.
2. Which image-processor settings reproduce the input the TFLite model expects? The interpreter gets
   TF-slim's eval preprocessing for this model (central 87.5 % crop, bilinear resize to 224 x 224);
   the converted model gets each candidate processor's output from the original image.
"""

import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tflite
import torch
from PIL import Image
from sklearn.datasets import load_sample_images
from transformers import HfArgumentParser, MobileNetV2ForImageClassification, MobileNetV2ImageProcessorPil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from brain_tumor.tflite_mobilenet import (  # noqa: E402
    DEFAULT_TFLITE_PATH,
    _target_layers,
    build_image_processor,
    convert_tflite_to_transformers,
)

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


def natural_images(n: int) -> list[Image.Image]:
    """Deterministic random crops (10-100 % of the area, aspect 3:4 to 4:3) and flips of two photos."""
    rng = np.random.default_rng(0)
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


def mri_images(folder: Path, n: int) -> list[Image.Image]:
    classes = sorted(p for p in folder.iterdir() if p.is_dir())
    if not classes:
        raise SystemExit(f"No class folders in {folder}; pass --mri_dir or --n_mri 0.")
    files = [f for c in classes for f in sorted(c.glob("*.jpg"))[: -(-n // len(classes))]][:n]
    return [Image.open(f).convert("RGB") for f in files]


def tf_slim_eval_input(image: Image.Image) -> np.ndarray:
    """TF-slim's eval preprocessing for MobileNet: keep the central 87.5 % of each side, resize to 224."""
    width, height = image.size
    box = (width * 0.0625, height * 0.0625, width * 0.9375, height * 0.9375)
    return np.asarray(image.convert("RGB").resize((224, 224), Image.Resampling.BILINEAR, box=box))


def tflite_probabilities(path: str, pixels: np.ndarray) -> np.ndarray:
    interpreter = Interpreter(model_path=path, num_threads=2)
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    scale, zero_point = out["quantization"]
    probs = []
    for image in pixels:
        interpreter.set_tensor(inp["index"], image[None])
        interpreter.invoke()
        probs.append((interpreter.get_tensor(out["index"])[0].astype(np.float64) - zero_point) * scale)
    return np.stack(probs)


def simulate_8bit_activations(model, tflite_path: str) -> list:
    """Round the converted model's activations as the interpreter does: every conv / add / pool output
    to uint8 with the scale and zero point of the matching TFLite tensor (clamping also applies ReLU6).
    Returns the hook handles; remove them to get the float model back."""
    kinds = {
        tflite.BuiltinOperator.CONV_2D: "conv",
        tflite.BuiltinOperator.DEPTHWISE_CONV_2D: "conv",
        tflite.BuiltinOperator.ADD: "add",
        tflite.BuiltinOperator.AVERAGE_POOL_2D: "pool",
    }
    flat = tflite.Model.GetRootAsModel(Path(tflite_path).read_bytes(), 0)
    graph = flat.Subgraphs(0)
    quant = {"conv": [], "add": [], "pool": []}
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = flat.OperatorCodes(op.OpcodeIndex())
        kind = kinds.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()))
        if kind:
            q = graph.Tensors(op.Outputs(0)).Quantization()
            quant[kind].append((float(q.Scale(0)), int(q.ZeroPoint(0))))
    modules = {
        "conv": [layer for _, layer in _target_layers(model)],  # the classifier's output is the logits
        "add": [block for block in model.mobilenet_v2.layer if block.use_residual],
        "pool": [model.mobilenet_v2.pooler],
    }
    handles = []
    for kind, layers in modules.items():
        if len(layers) != len(quant[kind]):
            raise SystemExit(f"{tflite_path}: {len(quant[kind])} {kind} outputs, the model has {len(layers)}.")
        for layer, (scale, zero) in zip(layers, quant[kind]):
            hook = lambda module, inputs, out, s=scale, z=zero: (torch.clamp(torch.round(out / s) + z, 0, 255) - z) * s
            handles.append(layer.register_forward_hook(hook))
    return handles


@torch.inference_mode()
def torch_probabilities(model, pixel_values: torch.Tensor, batch_size: int = 25) -> np.ndarray:
    chunks = [model(pixel_values=pixel_values[i : i + batch_size]).logits for i in range(0, len(pixel_values), batch_size)]
    return torch.softmax(torch.cat(chunks), dim=-1).double().numpy()


def compare(reference: np.ndarray, converted: np.ndarray, groups: dict[str, slice]) -> str:
    """Top-1 agreement and probability correlation per image group, as one table row."""
    cells = []
    for rows in groups.values():
        ref, conv = reference[rows], converted[rows]
        # The interpreter's softmax is 8-bit (steps of 1/256), so its top classes can tie; argmax then
        # picks the lowest index. Count those cases so a reader can tell rounding from real differences.
        ties = int(((ref == ref.max(axis=1, keepdims=True)).sum(axis=1) > 1).sum())
        agree = 100 * np.mean(ref.argmax(axis=1) == conv.argmax(axis=1))
        corr = np.corrcoef(ref.ravel(), conv.ravel())[0, 1]
        cells.append(f"{agree:6.1f} % {corr:8.5f} {ties:4d}")
    return " | ".join(cells)


def main():
    (args,) = HfArgumentParser(CheckArguments).parse_args_into_dataclasses()

    # The images: natural first, then MRI; each model sees them in this order.
    images = natural_images(args.n_natural) + (mri_images(Path(args.mri_dir), args.n_mri) if args.n_mri else [])
    groups = {"natural": slice(0, args.n_natural), "MRI": slice(args.n_natural, len(images)), "all": slice(None)}
    groups = {name: rows for name, rows in groups.items() if len(range(len(images))[rows])}

    # Convert through the public API and load what it wrote, so the check covers the saved files.
    with tempfile.TemporaryDirectory() as tmp:
        convert_tflite_to_transformers(args.tflite, tmp)
        model = MobileNetV2ForImageClassification.from_pretrained(tmp).eval()
        saved_processor = MobileNetV2ImageProcessorPil.from_pretrained(tmp)

    reference_pixels = np.stack([tf_slim_eval_input(image) for image in images])  # N x 224 x 224 x 3 uint8
    reference = tflite_probabilities(args.tflite, reference_pixels)
    header = " | ".join(f"{name} ({len(range(len(images))[rows])}): top-1 agree, prob corr, ties" for name, rows in groups.items())

    # 1. Same pixels in, same predictions out?
    print(f"1. Conversion fidelity: identical 224 x 224 uint8 pixels to both models\n   {header}")
    same_pixels = torch.from_numpy(reference_pixels).permute(0, 3, 1, 2).float().sub(128).div(128)
    print(f"   {'float activations':<48}{compare(reference, torch_probabilities(model, same_pixels), groups)}")
    handles = simulate_8bit_activations(model, args.tflite)
    print(f"   {'8-bit activations simulated':<48}{compare(reference, torch_probabilities(model, same_pixels), groups)}")
    for handle in handles:
        handle.remove()

    # 2. Which processor settings give the TFLite model's input?
    base = build_image_processor().to_dict()
    half = {"image_mean": [0.5] * 3, "image_std": [0.5] * 3}
    candidates = {
        "saved: squash 256, crop 224, mean=std=128/255": saved_processor,
        "squash 256, crop 224, mean=std=0.5": {**half},
        "short side 256, crop 224 (HF default geometry)": {"size": {"shortest_edge": 256}},
        "squash 224, no crop (full image)": {"size": {"height": 224, "width": 224}, "do_center_crop": False},
    }
    print(f"\n2. Image processor on the original image vs the interpreter on TF-slim eval input\n   {header}")
    for name, settings in candidates.items():
        processor = settings if isinstance(settings, MobileNetV2ImageProcessorPil) else MobileNetV2ImageProcessorPil(**{**base, **settings})
        pixel_values = processor(images, return_tensors="pt")["pixel_values"]
        print(f"   {name:<48}{compare(reference, torch_probabilities(model, pixel_values), groups)}")


if __name__ == "__main__":
    main()
