"""Class-activation maps: where in the model's input the evidence for a class lies.

A method is written `CAM@LAYER[+SMOOTHING]`, e.g. `gradcam@final` or `layercam@stride16+tta`:

- CAM, from a layer's activations A (channels k) and the gradient G of the class logit w.r.t. A:
  - `gradcam`   Grad-CAM (Selvaraju et al., 2017): ReLU(sum_k mean(G_k) A_k).
  - `gradcam++` Grad-CAM++ (Chattopadhay et al., 2018): channel weights sum_ij alpha_kij ReLU(G_kij),
                with alpha from the closed form for an exponential score (as pytorch-grad-cam does).
  - `hirescam`  HiResCAM (Draelos & Carin, 2020): ReLU(sum_k G_k * A_k), element-wise, no averaging.
  - `layercam`  Layer-CAM (Jiang et al., 2021): ReLU(sum_k ReLU(G_k) * A_k).
- LAYER: `final` is the backbone's last spatial map (`last_hidden_state`; stride 32 for ResNet and
  ConvNeXt); `stride16` is the deepest hidden state at stride <= 16 (ResNet's or ConvNeXt's stage 3),
  twice as fine; `fused` is the mean of the two maps (each scaled to max 1), as Layer-CAM's authors
  combine layers: the coarse map says which region, the finer one sharpens it.
- SMOOTHING (test-time): `+flip` averages the map of the slice and of its mirror image; `+tta`
  averages ten copies (identity and mirror, each also shifted by ~4 % of the width up, down, left
  and right). Each copy's map is moved back onto the original frame and scaled to max 1 first.
  The class is the one predicted on the unaltered input, and so are the probabilities.

pytorch-grad-cam implements these, but imports torchvision (absent here) at module level and
registers hooks on the model; here every map comes from one forward with `output_hidden_states`
and one backward, so several methods cost no more than one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F

CAMS = ("gradcam", "gradcam++", "hirescam", "layercam")
LAYERS = ("final", "stride16", "fused")
SMOOTHINGS = ("none", "flip", "tta")
SHIFT_FRACTION = 0.04  # of the input width: ~8 px at 192 px, a half cell of a stride-16 map

# Chosen by bench/localization.py's comparison on the expert test masks for the default model
# (bench/results/localization_lite0_methods.md, EfficientNet-Lite0 trained with the mask loss): the best
# pointing game on the clean test, 96.5 % against 88.4 % for plain Grad-CAM (centre baseline 55.5 %),
# and on the official test. Averaging over mirrored and shifted copies gives the gain: at stride 32 a
# tumour is a cell or two, and the peak of one pass snaps to the cell grid. On the previous default
# (a ResNet trained without masks) every method stayed at or below the centre baseline
# (bench/results/localization_methods.md).
DEFAULT_METHOD = "layercam@final+tta"

_METHOD = re.compile(r"^(?P<cam>[a-z+]+?)@(?P<layer>[a-z0-9]+)(?:\+(?P<smoothing>[a-z]+))?$")


@dataclass(frozen=True)
class SaliencyMethod:
    cam: str = "gradcam"
    layer: str = "final"
    smoothing: str = "none"

    @classmethod
    def parse(cls, text: str) -> "SaliencyMethod":
        match = _METHOD.match(str(text).strip().lower())
        method = cls(match["cam"], match["layer"], match["smoothing"] or "none") if match else None
        if method is None or method.cam not in CAMS or method.layer not in LAYERS or method.smoothing not in SMOOTHINGS:
            raise ValueError(f"Unknown saliency method {text!r}: write CAM@LAYER[+SMOOTHING] with CAM one of "
                             f"{', '.join(CAMS)}; LAYER one of {', '.join(LAYERS)}; SMOOTHING one of flip, tta "
                             "(e.g. 'gradcam@final' or 'layercam@stride16+tta').")
        return method

    def __str__(self) -> str:
        return f"{self.cam}@{self.layer}" + ("" if self.smoothing == "none" else f"+{self.smoothing}")


def all_methods() -> list[str]:
    return [str(SaliencyMethod(c, l, s)) for l in LAYERS for s in SMOOTHINGS for c in CAMS]


# --- the maps ------------------------------------------------------------------------------------


def cam(kind: str, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
    """(N, K, h, w) activations and gradients -> (N, h, w) non-negative map."""
    if kind == "gradcam":
        weights = gradients.mean(dim=(2, 3), keepdim=True)
        return torch.relu((weights * activations).sum(dim=1))
    if kind == "gradcam++":
        g2 = gradients.pow(2)
        denominator = 2 * g2 + activations.sum(dim=(2, 3), keepdim=True) * g2 * gradients
        alpha = torch.where(gradients != 0, g2 / (denominator + 1e-7), torch.zeros_like(g2))
        weights = (alpha * torch.relu(gradients)).sum(dim=(2, 3), keepdim=True)
        return torch.relu((weights * activations).sum(dim=1))
    if kind == "hirescam":
        return torch.relu((gradients * activations).sum(dim=1))
    if kind == "layercam":
        return torch.relu((torch.relu(gradients) * activations).sum(dim=1))
    raise ValueError(f"unknown CAM {kind!r}; one of {CAMS}")


def pick_layers(final: torch.Tensor | None, hidden_states, input_height: int) -> dict[str, torch.Tensor]:
    """{"final": last spatial map, "stride16": deepest map at stride <= 16}, where they exist."""
    spatial = [h for h in (hidden_states or ()) if h is not None and h.ndim == 4]
    if final is None or final.ndim != 4:
        final = spatial[-1] if spatial else None
    if final is None:
        return {}
    layers = {"final": final}
    fine = [h for h in spatial + [final] if round(input_height / h.shape[-2]) <= 16]
    if fine:
        layers["stride16"] = fine[-1]
    return layers


def _copies(smoothing: str, width: int) -> list[tuple[bool, int, int]]:
    """(mirror, dx, dy) per copy; the first is always the input itself."""
    if smoothing == "none":
        return [(False, 0, 0)]
    if smoothing == "flip":
        return [(False, 0, 0), (True, 0, 0)]
    s = max(1, round(SHIFT_FRACTION * width))
    shifted = [(mirror, dx, dy) for mirror in (False, True) for dx, dy in ((s, 0), (-s, 0), (0, s), (0, -s))]
    return [(False, 0, 0), (True, 0, 0)] + shifted  # "flip"'s copies first: one pass serves both


def _translate(images: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """out[y, x] = in[y - dy, x - dx], edges replicated (no wrap-around, no black bands)."""
    if dx == 0 and dy == 0:
        return images
    s, (height, width) = max(abs(dx), abs(dy)), images.shape[-2:]
    padded = F.pad(images, (s, s, s, s), mode="replicate")
    return padded[..., s - dy : s - dy + height, s - dx : s - dx + width]


def augment(pixel_values: torch.Tensor, copies) -> torch.Tensor:
    """(B, C, H, W) -> (B * len(copies), C, H, W), the copies of each image side by side."""
    out = [_translate(pixel_values.flip(-1) if mirror else pixel_values, dx, dy) for mirror, dx, dy in copies]
    return torch.stack(out, dim=1).flatten(0, 1)


def _undo(maps: torch.Tensor, copies) -> torch.Tensor:
    """(B, N, H, W) maps of the copies -> the same maps on the original image's frame."""
    if len(copies) == 1:
        return maps
    back = [_translate(maps[:, i : i + 1], -dx, -dy)[:, 0] for i, (_, dx, dy) in enumerate(copies)]
    back = [m.flip(-1) if mirror else m for m, (mirror, _, _) in zip(back, copies)]
    return torch.stack(back, dim=1)


def _unit_max(maps: torch.Tensor) -> torch.Tensor:
    # Maps are non-negative, so an all-zero map stays zero.
    return maps / maps.flatten(-2).amax(dim=-1)[..., None, None].clamp_min(1e-12)


def saliency_maps(run, pixel_values: torch.Tensor, methods) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """(logits, pooled features, {method: (B, H, W) map in [0, 1] on the model's input}).

    `run(pixel_values) -> (logits, pooled, final_map, hidden_states)` is one forward of the model.
    Every method comes from a single forward and backward pass over the copies the smoothest
    requested method needs; a model without spatial maps gives an empty dict.
    """
    methods = [m if isinstance(m, SaliencyMethod) else SaliencyMethod.parse(m) for m in methods]
    batch, height, width = pixel_values.shape[0], *pixel_values.shape[-2:]
    smoothing = max((m.smoothing for m in methods), key=SMOOTHINGS.index, default="none")
    copies = _copies(smoothing, width)
    # Gradients are needed, so this runs outside inference_mode; the input is made to require
    # grad so a graph exists even if someone froze the model's parameters.
    with torch.inference_mode(False), torch.enable_grad():
        inputs = augment(pixel_values.detach(), copies).requires_grad_(True)
        logits, pooled, final, hidden_states = run(inputs)
        layers = pick_layers(final, hidden_states, height)
        own = torch.arange(batch, device=logits.device) * len(copies)  # each image's unaltered copy
        top = logits[own].argmax(dim=-1).repeat_interleave(len(copies))
        maps = {}
        if layers:
            tensors = list({id(t): t for t in layers.values()}.values())
            score = logits.gather(1, top[:, None]).sum()  # images are independent: one backward for all
            grads = dict(zip(map(id, tensors), torch.autograd.grad(score, tensors)))
            per_copy = {}  # (cam, layer) -> (B, copies, H, W) maps on the original frame, max 1 each
            for method in (m for m in methods if m.layer in layers or m.layer == "fused"):
                fused = method.layer == "fused"
                sources = [n for n in ("final", "stride16") if n in layers] if fused else [method.layer]
                for name in sources:
                    if (method.cam, name) not in per_copy:
                        raw = _unit_max(cam(method.cam, layers[name].detach(), grads[id(layers[name])]))
                        raw = F.interpolate(raw[:, None], size=(height, width), mode="bilinear", align_corners=False)
                        per_copy[method.cam, name] = _undo(raw[:, 0].view(batch, len(copies), height, width), copies)
                combined = sum(per_copy[method.cam, name] for name in sources) / len(sources)
                used = len(_copies(method.smoothing, width))  # the smoothing's copies come first
                maps[str(method)] = _unit_max(combined[:, :used].mean(dim=1))
    return logits[own].detach(), pooled[own].detach(), maps
