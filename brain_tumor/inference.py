"""Predictor: one loaded model that turns a scan into probabilities, a saliency map and a verdict.

Used by the Gradio app, the `predict` CLI and Python code alike; it never imports Gradio.
Probabilities are the softmax of the model's logits: training folds the calibration temperature
into the classifier head, so they are calibrated as stored (and `pipeline()` agrees with them).
Class names always come from `model.config.id2label`.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from . import checks as checks_lib
from .imaging import LoadedScan, _to_gray_or_rgb, load_slice
from .labels import CLASS_NAMES, DESCRIPTIONS, TUMOR_CLASSES, canonical_label
from .modeling import (ModelLoadError, classifier_layer, compiled_for_inference, load_error_message,
                       prepare_for_cpu_inference)
from .overlay import overlay_heatmap
from .saliency import DEFAULT_METHOD, SaliencyMethod, saliency_maps
from .slice_geometry import probe_geometry, to_slice

log = logging.getLogger(__name__)


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
    heatmap: Image.Image | None = None  # `saliency` drawn over the decoded slice (RGB, the slice's size)
    # Where the evidence for `label` lies: float32 in [0, 1], aligned pixel for pixel with
    # `scan.image` (same height x width; 0 where the processor cropped the slice away).
    saliency: np.ndarray | None = None
    saliency_method: str | None = None  # e.g. "gradcam@final"; see brain_tumor.saliency
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

    One forward of the backbone (`model.base_model`) gives the pooled features the checks use and,
    through the model's own head, the logits. With `heatmap=True` the same forward also returns
    the hidden states (`output_hidden_states`, so no hook stays on the model), and a backward pass
    gives the saliency map of the predicted class (`saliency_method`, see `brain_tumor.saliency`),
    mapped back onto the decoded slice (`brain_tumor.slice_geometry`) and drawn over it. A map read
    from the final feature map skips the backward pass when the head is linear on that map's
    spatial mean: the gradient is then the head's weight row (`saliency.final_map_gradients`).

    With `compile=True` (or after `compile_for_answering()`, which a server may call in a thread while
    it answers eager) the forward without a heat map runs a compiled copy of the backbone
    (`modeling.compiled_for_inference`), compiled on one image, so that no visitor's request pays the
    compile time; the heat map's passes (other input sizes, hidden states, maybe gradients) stay
    eager. Where compiling fails (no C++ compiler, say) the predictor serves eager and logs why.
    """

    def __init__(self, model, image_processor, checks: dict | None = None, device: str | None = None,
                 saliency_method: str = DEFAULT_METHOD, prepare_for_cpu: bool = True, compile: bool = False):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()
        if prepare_for_cpu and self.device.type == "cpu":
            # The same answers, sooner on a CPU (measured there only). The model is changed in
            # place; `prepare_for_cpu=False` keeps it as saved, for benchmarks that compare both.
            prepare_for_cpu_inference(self.model)
        self.image_processor = image_processor
        config = model.config
        self.labels = [str(config.id2label[i]) for i in range(config.num_labels)]
        stored = checks if checks is not None else getattr(config, checks_lib.CONFIG_KEY, None)
        self.checks = checks_lib.resolve_checks(stored)
        self.checks_fitted = bool(stored)
        self.saliency_method = str(SaliencyMethod.parse(saliency_method))
        # Slice (width, height) -> the processor's resize/crop geometry; lru_cache is thread-safe for
        # the app's concurrent requests and keeps the cache small whatever sizes arrive.
        self._geometry = functools.lru_cache(maxsize=64)(self._probe_geometry)
        # One preprocessed gradient image probes the head at load and compiles the backbone.
        self._probe_pixels = self._pixel_values([Image.linear_gradient("L")])
        self._head_on_pooled, self._linear_head = self._probe_head()
        self.compile_seconds: float | None = None  # how long compiling took, when it worked
        self._compiled_backbone = None
        if compile:
            self.compile_for_answering()

    def compile_for_answering(self) -> bool:
        """Compile the backbone for answers without a heat map (once); whether that worked. Requests
        answered meanwhile, from other threads, run eager: the compiled copy is switched in whole."""
        # Only the pooled-feature path reads the backbone alone, so only it has a compiled copy.
        if self._compiled_backbone is None and self._head_on_pooled:
            self._compiled_backbone = self._compile_backbone()
        return self.compiled

    @property
    def compiled(self) -> bool:
        """Whether answers without a heat map come from a compiled backbone."""
        return self._compiled_backbone is not None

    @classmethod
    def from_pretrained(cls, model_id_or_folder: str, device: str | None = None, **kwargs) -> "Predictor":
        """Load from a local folder or a Hugging Face Hub id (cached copies work offline)."""
        from transformers import AutoImageProcessor, AutoModelForImageClassification

        name = str(model_id_or_folder).strip()
        try:
            model = AutoModelForImageClassification.from_pretrained(name)
            processor = AutoImageProcessor.from_pretrained(name)
        except (OSError, ValueError, KeyError) as error:
            raise ModelLoadError(load_error_message(name, error)) from None
        # Fitted checks: small values in config.json, arrays in checks.safetensors beside it.
        return cls(model, processor, checks=checks_lib.load_checks(name, model.config), device=device, **kwargs)

    # --- model plumbing ----------------------------------------------------------------------

    def _probe_head(self) -> tuple[bool, torch.nn.Linear | None]:
        """Checked once on the probe image: whether logits == model.classifier(the base model's pooled
        features), as in transformers' ResNet, ConvNeXt and MobileNet classifiers; and if so, the head's
        linear layer when it alone, applied to the final map's mean over space, gives the logits
        (ResNet and MobileNetV2; not ConvNeXt, which normalises the mean first). With that layer the
        heat map's gradients on the final map are known without a backward pass."""
        classifier = getattr(self.model, "classifier", None)
        if classifier is None:
            return False, None
        with torch.inference_mode():
            expected = self.model(pixel_values=self._probe_pixels).logits
            out = self.model.base_model(pixel_values=self._probe_pixels)
            try:
                got = classifier(_pooled(out.last_hidden_state, getattr(out, "pooler_output", None)))
            except (RuntimeError, TypeError, AttributeError):
                return False, None
            if got.shape != expected.shape or not torch.allclose(got, expected, atol=1e-4, rtol=1e-4):
                return False, None
            return True, self._linear_on_final_mean(out.last_hidden_state, expected)

    def _linear_on_final_mean(self, final: torch.Tensor, logits: torch.Tensor) -> torch.nn.Linear | None:
        try:
            layer = classifier_layer(self.model)
        except ValueError:
            return None
        if final.ndim != 4 or layer.in_features != final.shape[1]:
            return None
        return layer if torch.allclose(layer(final.mean(dim=(2, 3))), logits, atol=1e-4, rtol=1e-4) else None

    def _compile_backbone(self):
        """The backbone compiled for answering, after one call that compiles it; None if that fails."""
        started = time.perf_counter()
        try:  # torch.compile itself refuses some Python versions; inductor fails on the first call
            backbone = compiled_for_inference(self.model.base_model)
            with torch.inference_mode():
                backbone(pixel_values=self._probe_pixels, output_hidden_states=False)
        except Exception as error:  # inductor's failures have many types; eager still answers
            log.warning("serving %s eager: compiling it failed (%s: %s)", type(self.model).__name__,
                        type(error).__name__, str(error).splitlines()[0] if str(error) else "")
            return None
        self.compile_seconds = time.perf_counter() - started
        return backbone

    def _run(self, pixel_values: torch.Tensor, hidden_states: bool = False):
        """(logits, pooled features, last spatial map, hidden states or None) for a batch."""
        if self._head_on_pooled:
            # The compiled copy answers only without gradients or hidden states, as it was compiled: the heat
            # map's passes stay eager.
            compiled = self._compiled_backbone is not None and not hidden_states and not torch.is_grad_enabled()
            backbone = self._compiled_backbone if compiled else self.model.base_model
            out = backbone(pixel_values=pixel_values, output_hidden_states=hidden_states)
            pooled = _pooled(out.last_hidden_state, getattr(out, "pooler_output", None))
            return self.model.classifier(pooled), pooled, out.last_hidden_state, out.hidden_states
        # Another head (a ViT's class token, say): the whole model, features from its last state.
        out = self.model(pixel_values=pixel_values, output_hidden_states=True)
        last = out.hidden_states[-1]
        return out.logits, _pooled(last, None), last, out.hidden_states

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

    def _batches(self, items, batch_size: int, slice_index: int | None = None, methods=()):
        """The one batching loop: yields (scans, logits, pooled, [{method: slice map}] or None)."""
        items = list(items)
        for start in range(0, len(items), batch_size):
            scans = [self._as_scan(item, slice_index) for item in items[start : start + batch_size]]
            pixel_values = self._pixel_values([scan.image for scan in scans])
            if not methods:
                with torch.inference_mode():
                    logits, pooled, _, _ = self._run(pixel_values)
                yield scans, logits, pooled, None
                continue
            head_weights = self._linear_head.weight.detach() if self._linear_head is not None else None
            logits, pooled, maps = saliency_maps(lambda pv: self._run(pv, hidden_states=True), pixel_values, methods,
                                                 head_weights)
            names = list(maps)
            per_scan = []
            for i, scan in enumerate(scans):
                stacked = self._to_slice(torch.stack([maps[name][i] for name in names]), scan.image) if names else None
                # Copies, not views: a kept map must not keep every other method's map alive.
                per_scan.append({} if stacked is None else {n: m.copy() for n, m in zip(names, stacked)})
            yield scans, logits, pooled, per_scan

    def _probe_geometry(self, size: tuple[int, int]):
        try:
            return probe_geometry(self._pixel_values, *size)
        except ValueError:  # a processor that pads or warps: no map rather than a wrong one
            return None

    def _to_slice(self, model_maps: torch.Tensor, image: Image.Image) -> np.ndarray | None:
        geometry = self._geometry(image.size)
        return to_slice(model_maps, geometry, *image.size) if geometry is not None else None

    def forward_many(self, items, batch_size: int = 32) -> dict[str, np.ndarray]:
        """Probabilities and pooled features for many images, without saliency maps."""
        probabilities, features = [], []
        for _, logits, pooled, _ in self._batches(items, batch_size):
            probabilities.append(torch.softmax(logits.float(), dim=-1).cpu().numpy())
            features.append(pooled.float().cpu().numpy())
        return {"probabilities": np.concatenate(probabilities), "features": np.concatenate(features)}

    # --- prediction ----------------------------------------------------------------------------

    def predict(self, image, slice_index: int | None = None, heatmap: bool = True) -> Prediction:
        """Classify one image: a PIL image, a LoadedScan, a path or file bytes. With `heatmap`,
        also its saliency map and the overlay drawn from it."""
        return self.predict_batch([image], batch_size=1, slice_index=slice_index, heatmap=heatmap)[0]

    def predict_batch(self, images, batch_size: int = 16, slice_index: int | None = None,
                      heatmap: bool = False) -> list[Prediction]:
        """Classify many images in batches (saliency maps only with `heatmap`): CLI, benchmarks."""
        methods = [self.saliency_method] if heatmap else ()
        predictions = []
        for scans, logits, pooled, maps in self._batches(images, batch_size, slice_index, methods):
            for i, scan in enumerate(scans):
                saliency = maps[i].get(self.saliency_method) if maps else None
                predictions.append(self._assemble(scan, logits[i], pooled[i], saliency))
        return predictions

    def saliency_by_method(self, images, methods, batch_size: int = 8) -> list[dict[str, np.ndarray]]:
        """{method: slice-aligned map} per image for several methods at once (one pass per batch):
        for comparing methods (bench/localization.py)."""
        methods = [str(SaliencyMethod.parse(m)) for m in methods]
        return [maps for *_, batch_maps in self._batches(images, batch_size, methods=methods) for maps in batch_maps]

    def _assemble(self, scan: LoadedScan, logits: torch.Tensor, pooled: torch.Tensor, saliency) -> Prediction:
        probs = torch.softmax(logits.float(), dim=-1).cpu().numpy()
        index, top, _ = checks_lib.top_two(probs)
        stats = checks_lib.image_statistics(scan.image)
        not_mri = checks_lib.image_statistics_reasons(stats, self.checks["image_statistics"])
        features = pooled.float().cpu().numpy()[None]
        not_mri += checks_lib.feature_distance_reasons(features, self.checks.get("feature_distance"))
        uncertain = checks_lib.uncertainty_reasons(probs, self.labels, self.checks["uncertainty"])
        label = self.labels[index]
        probabilities = {name: float(p) for name, p in zip(self.labels, probs)}
        uncertain += checks_lib.tumour_threshold_reasons(is_no_tumour(label), tumour_probability(probabilities),
                                                         self.checks.get("tumour_threshold"))
        return Prediction(
            probabilities=probabilities,
            label=label,
            probability=float(top),
            verdict=verdict_text(label, float(top), not_mri, uncertain, probabilities),
            uncertain=bool(uncertain),
            uncertain_reasons=uncertain,
            not_mri=bool(not_mri),
            not_mri_reasons=not_mri,
            heatmap=overlay_heatmap(scan.image, saliency) if saliency is not None else None,
            saliency=saliency,
            saliency_method=self.saliency_method if saliency is not None else None,
            scan=scan,
        )


def _pooled(last: torch.Tensor, pooler: torch.Tensor | None) -> torch.Tensor:
    """The features the head reads: the pooler's output, else the mean over space (or tokens)."""
    if pooler is not None:
        return pooler.flatten(1)
    return last.mean(dim=(2, 3)) if last.ndim == 4 else last.mean(dim=1) if last.ndim == 3 else last


# A tumour whose type the model cannot tell (Br35H's T2 and FLAIR tumours, say) spreads its
# probability over the three types and is flagged uncertain, though the (calibrated) probabilities
# still say "a tumour" clearly; from this summed probability on, the verdict says so first.
TUMOUR_LIKELY = 0.9
# Split three ways, the tumour types can together outweigh "no tumour" while each alone is below it:
# then the arg max says no tumour, but a tumour is the likelier answer, and the verdict says so.
TUMOUR_MORE_LIKELY = 0.5


def is_no_tumour(label: str) -> bool:
    """Whether a model's label means no tumour (False for a model with other classes)."""
    try:
        return canonical_label(label) == "notumor"
    except ValueError:  # a model with other classes
        return False


def tumour_probability(probabilities: dict[str, float] | None) -> float | None:
    """The three tumour types' summed probability; None for a model with other classes."""
    try:
        by_class = {canonical_label(name): p for name, p in (probabilities or {}).items()}
    except ValueError:
        return None
    if set(by_class) != set(CLASS_NAMES):
        return None
    return float(sum(by_class[name] for name in TUMOR_CLASSES))


def verdict_text(label: str, probability: float, not_mri_reasons: list[str], uncertain_reasons: list[str],
                 probabilities: dict[str, float] | None = None) -> str:
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
    tumour = tumour_probability(probabilities)
    if canonical == "notumor" and tumour is not None and tumour > TUMOUR_MORE_LIKELY:
        return (
            f"More likely a tumour than not: the three tumour types together get {tumour:.0%}, against "
            f"{probability:.0%} for no tumour, which leads only because the tumour's probability is split over "
            "three types. The type is unknown. Do not rely on this prediction."
        )
    if uncertain_reasons and canonical != "notumor" and tumour is not None and tumour >= TUMOUR_LIKELY:
        return (
            f"Tumour, type uncertain: the three tumour types together get {tumour:.0%}; the best guess of the type "
            f"is {name} ({probability:.0%}), but {'; '.join(uncertain_reasons)}. Do not rely on the type."
        )
    if uncertain_reasons:
        return (
            f"Uncertain: the best guess is {name} ({probability:.0%}), but {'; '.join(uncertain_reasons)}. "
            "Do not rely on this prediction."
        )
    sentence = f"{name[:1].upper()}{name[1:]} ({probability:.0%})"
    return f"{sentence}: {meaning}." if meaning else f"{sentence}."
