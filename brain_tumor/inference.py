"""Predictor: one loaded model that turns a scan into probabilities, a heat map and a verdict.

Used by the Gradio app, the `predict` CLI and Python code alike; it never imports Gradio.
Probabilities are the softmax of the model's logits: training folds the calibration temperature
into the classifier head, so they are calibrated as stored (and `pipeline()` agrees with them).
Class names always come from `model.config.id2label`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from . import checks as checks_lib
from .imaging import LoadedScan, _to_gray_or_rgb, load_slice
from .labels import DESCRIPTIONS, canonical_label
from .modeling import ModelLoadError, load_error_message


@dataclass
class Prediction:
    probabilities: dict[str, float]  # {label: probability}, in config.id2label order
    label: str  # the top class
    probability: float
    verdict: str  # one or two plain sentences for a person
    uncertain: bool = False
    uncertain_reasons: list[str] = field(default_factory=list)
    not_mri: bool = False
    not_mri_reasons: list[str] = field(default_factory=list)
    heatmap: Image.Image | None = None  # Grad-CAM overlay on the image as the model saw it
    scan: LoadedScan | None = None  # the decoded slice and what was done to it

    def as_record(self) -> dict:
        """A flat, JSON-ready summary (no images), used by the CLI."""
        return {
            "label": self.label,
            "probability": self.probability,
            "probabilities": dict(self.probabilities),
            "uncertain": self.uncertain,
            "not_mri": self.not_mri,
            "reasons": "; ".join(self.not_mri_reasons + self.uncertain_reasons),
            "verdict": self.verdict,
            "slice_index": self.scan.slice_index if self.scan else None,
            "num_slices": self.scan.num_slices if self.scan else None,
        }


class Predictor:
    """Wraps a transformers image classifier and its image processor.

    Heat map method: Grad-CAM (Selvaraju et al., 2017) on the last spatial feature map, i.e. the
    `last_hidden_state` of the model's backbone (`model.base_model`), captured by a forward hook:
    for ResNet it is the last stage, for ConvNeXt the last stage before its pooling layer norm,
    for MobileNetV2 the final 1x1 convolution. Channel weights are the spatial mean of the
    gradient of the top class's logit; the map is ReLU(weighted sum), scaled to 0..1 and drawn
    over the image as the model saw it (after the processor's resize and crop).
    """

    def __init__(self, model, image_processor, checks: dict | None = None, device: str | None = None):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()
        self.image_processor = image_processor
        config = model.config
        self.labels = [str(config.id2label[i]) for i in range(config.num_labels)]
        stored = checks if checks is not None else getattr(config, "brain_tumor_checks", None)
        self.checks = checks_lib.resolve_checks(stored)
        self.checks_fitted = bool(stored)
        # The hook stores the backbone's output per thread: the app serves several requests at
        # once on one model, and each must see its own activations.
        self._local = threading.local()
        self.model.base_model.register_forward_hook(self._capture)

    @classmethod
    def from_pretrained(cls, model_id_or_folder: str, device: str | None = None) -> "Predictor":
        """Load from a local folder or a Hugging Face Hub id (cached copies work offline)."""
        from transformers import AutoImageProcessor, AutoModelForImageClassification

        name = str(model_id_or_folder).strip()
        try:
            model = AutoModelForImageClassification.from_pretrained(name)
            processor = AutoImageProcessor.from_pretrained(name)
        except (OSError, ValueError, KeyError) as error:
            raise ModelLoadError(load_error_message(name, error)) from None
        # Fitted checks: small values in config.json, arrays in checks.safetensors beside it.
        return cls(model, processor, checks=checks_lib.load_checks(name, model.config), device=device)

    # --- model plumbing ----------------------------------------------------------------------

    def _capture(self, module, inputs, output):
        self._local.backbone = output

    def _backbone(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(last spatial feature map, pooled features) from the latest forward in this thread."""
        out = self._local.backbone
        last = getattr(out, "last_hidden_state", None)
        pooled = getattr(out, "pooler_output", None)
        if last is None:
            last = out[0]
            pooled = out[1] if len(out) > 1 else None
        if pooled is None:  # no pooler: average over every axis except batch and channels
            pooled = last.mean(dim=tuple(range(2, last.ndim))) if last.ndim > 2 else last
        return last, pooled.flatten(1)

    def _forward(self, images: list[Image.Image]) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, pooled features) for a batch of slices, without gradients."""
        with torch.inference_mode():
            logits = self.model(pixel_values=self._pixel_values(images)).logits
            return logits, self._backbone()[1]

    def _pixel_values(self, images: list[Image.Image]) -> torch.Tensor:
        batch = self.image_processor(images=[img.convert("RGB") for img in images], return_tensors="pt")
        return batch["pixel_values"].to(self.device)

    def _as_scan(self, item, slice_index: int | None = None) -> LoadedScan:
        if isinstance(item, LoadedScan):
            return item
        if isinstance(item, Image.Image):
            return LoadedScan(image=_to_gray_or_rgb(item, []), format=item.format or "image")
        return load_slice(item, slice_index=slice_index)

    def slices(self, items) -> list[Image.Image]:
        return [self._as_scan(item).image for item in items]

    def forward_many(self, items, batch_size: int = 32) -> dict[str, np.ndarray]:
        """Probabilities and pooled features for many images, without heat maps."""
        probabilities, features = [], []
        items = list(items)
        for start in range(0, len(items), batch_size):
            logits, pooled = self._forward(self.slices(items[start : start + batch_size]))
            probabilities.append(torch.softmax(logits.float(), dim=-1).cpu().numpy())
            features.append(pooled.float().cpu().numpy())
        return {"probabilities": np.concatenate(probabilities), "features": np.concatenate(features)}

    # --- prediction ----------------------------------------------------------------------------

    def predict(self, image, slice_index: int | None = None, heatmap: bool = True) -> Prediction:
        """Classify one image: a PIL image, a LoadedScan, a path or file bytes."""
        scan = self._as_scan(image, slice_index)
        if not heatmap:
            logits, pooled = self._forward([scan.image])
            return self._assemble(scan, logits[0], pooled[0], None)
        pixel_values = self._pixel_values([scan.image])
        logits, pooled, cam = self.grad_cam(pixel_values)
        overlay = overlay_heatmap(pixel_values[0], cam) if cam is not None else None
        return self._assemble(scan, logits[0], pooled[0], overlay)

    def grad_cam(self, pixel_values: torch.Tensor):
        """(logits, pooled features, Grad-CAM map of the top class for the first image, or None
        when the backbone's last output is not a spatial map)."""
        # Gradients are needed, so this runs outside inference_mode; the input is made to
        # require grad so a graph exists even if someone froze the model's parameters.
        with torch.enable_grad():
            pixel_values = pixel_values.detach().requires_grad_(True)
            logits = self.model(pixel_values=pixel_values).logits
            feature_map, pooled = self._backbone()
            cam = None
            if feature_map.ndim == 4:
                top = int(logits[0].argmax())
                grads = torch.autograd.grad(logits[0, top], feature_map)[0]
                weights = grads[:1].mean(dim=(2, 3), keepdim=True)  # one weight per channel
                cam = torch.relu((weights * feature_map[:1]).sum(dim=1))[0].detach()
        return logits.detach(), pooled.detach(), cam

    def predict_batch(self, images, batch_size: int = 16, slice_index: int | None = None) -> list[Prediction]:
        """Classify many images in batches (no heat maps): for the CLI and benchmarks."""
        predictions = []
        items = list(images)
        for start in range(0, len(items), batch_size):
            scans = [self._as_scan(item, slice_index) for item in items[start : start + batch_size]]
            logits, pooled = self._forward([s.image for s in scans])
            predictions += [self._assemble(s, logits[i], pooled[i], None) for i, s in enumerate(scans)]
        return predictions

    def _assemble(self, scan: LoadedScan, logits: torch.Tensor, pooled: torch.Tensor, overlay) -> Prediction:
        probs = torch.softmax(logits.float(), dim=-1).cpu().numpy()
        index, top, _ = checks_lib.top_two(probs)
        stats = checks_lib.image_statistics(scan.image)
        not_mri = checks_lib.image_statistics_reasons(stats, self.checks["image_statistics"])
        features = pooled.float().cpu().numpy()[None]
        not_mri += checks_lib.feature_distance_reasons(features, self.checks.get("feature_distance"))
        uncertain = checks_lib.uncertainty_reasons(probs, self.labels, self.checks["uncertainty"])
        label = self.labels[index]
        return Prediction(
            probabilities={name: float(p) for name, p in zip(self.labels, probs)},
            label=label,
            probability=float(top),
            verdict=verdict_text(label, float(top), not_mri, uncertain),
            uncertain=bool(uncertain),
            uncertain_reasons=uncertain,
            not_mri=bool(not_mri),
            not_mri_reasons=not_mri,
            heatmap=overlay,
            scan=scan,
        )


def verdict_text(label: str, probability: float, not_mri_reasons: list[str], uncertain_reasons: list[str]) -> str:
    """The sentence a person reads first: class, probability and what the class means."""
    if not_mri_reasons:
        return (
            f"This does not look like a brain MRI slice: {'; '.join(not_mri_reasons)}. "
            "The model only knows axial brain MRI slices, so its output for this image means nothing."
        )
    try:
        canonical = canonical_label(label)
        meaning = DESCRIPTIONS[canonical]
    except ValueError:  # a model with other classes: name them as its config does
        canonical, meaning = label, ""
    name = "no tumour" if canonical == "notumor" else label.replace("_", " ")
    if uncertain_reasons:
        return (
            f"Uncertain: the best guess is {name} ({probability:.0%}), but {'; '.join(uncertain_reasons)}. "
            "Do not rely on this prediction."
        )
    sentence = f"{name[:1].upper()}{name[1:]} ({probability:.0%})"
    return f"{sentence}: {meaning}." if meaning else f"{sentence}."


# --- heat map drawing ----------------------------------------------------------------------

# A perceptually ordered dark-to-bright colour ramp (close to matplotlib's "inferno"); kept here
# as five anchors so the package needs no plotting library.
_RAMP = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], dtype=np.float32) / 255.0


def _colourise(values: np.ndarray) -> np.ndarray:
    position = np.clip(values, 0, 1) * (len(_RAMP) - 1)
    low = np.floor(position).astype(int).clip(0, len(_RAMP) - 2)
    frac = (position - low)[..., None]
    return _RAMP[low] * (1 - frac) + _RAMP[low + 1] * frac


def overlay_heatmap(pixel_values: torch.Tensor, cam: torch.Tensor, alpha: float = 0.6) -> Image.Image:
    """Draw a 0..1-scaled class-activation map over the model's input image.

    The input is shown as the model saw it: the processor's normalisation is undone by a per-image
    min-max stretch (exact for grayscale scans up to contrast), so no processor attribute is
    needed. Weak evidence stays transparent, so the anatomy under it remains readable.
    """
    gray = pixel_values.float().mean(dim=0).cpu().numpy()
    gray = (gray - gray.min()) / max(float(gray.max() - gray.min()), 1e-6)
    cam = cam.float().cpu().numpy()
    cam = cam / cam.max() if cam.max() > 0 else np.zeros_like(cam)
    height, width = gray.shape
    cam_image = Image.fromarray((cam * 255).astype(np.uint8), mode="L").resize((width, height), Image.BILINEAR)
    weight = np.asarray(cam_image, dtype=np.float32) / 255.0
    blend = gray[..., None] * (1 - alpha * weight[..., None]) + _colourise(weight) * alpha * weight[..., None]
    return Image.fromarray(np.round(np.clip(blend, 0, 1) * 255).astype(np.uint8), mode="RGB")
