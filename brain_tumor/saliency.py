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
  and right); `+ms` (multi-scale, as CAMERAS, Jalwana et al., 2021, feeds the input at several
  resolutions) averages the slice and its mirror enlarged to 1.4 and 2 times the model's input
  size: the network is fully convolutional, so a 2x input gives a 2x finer last map. Each copy's
  map is moved back onto the original frame and scaled to max 1 first. The class is the one
  predicted on the unaltered input, and so are the probabilities.
- `+halfmax` (last): shows the map above half its maximum, rescaled to [0, 1] and zero elsewhere
  (the full-width-at-half-maximum region, imaging's usual extent of a blob). The peak does not
  move; the faint evidence spread over the rest of the slice is dropped.

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
SMOOTHINGS = ("none", "flip", "tta", "ms")
SHIFT_FRACTION = 0.04  # of the input width: ~8 px at 192 px, a half cell of a stride-16 map
MS_SCALES = (1.4, 2.0)  # x the model's input size; 2.0 at 160 px turns a 5 x 5 last map into 10 x 10

# Chosen by bench/localization.py's comparison on the expert test masks for the default model
# (bench/results/localization_lite0_methods.md, EfficientNet-Lite0 trained with the mask loss): the best
# pointing game on the clean test, 97.7 % (plain Grad-CAM 88.4 %, centre baseline 55.5 %), and the
# peak inside the mask itself in 70.0 % of slices against 46.4 % for ten shifted copies (`+tta`).
# At 160 px the last map is 5 x 5 cells, so one pass snaps to the cell grid and spreads its mass
# over cells of 32 px; the 2x input halves the cell. `+halfmax` then shows the region above half
# the peak: 36.1 % of the shown map lies inside the mask (10.7 % of the whole map; masks cover
# 1.5 % of a slice). On the previous default (a ResNet trained without masks) every method stayed at
# or below the centre baseline (bench/results/localization_methods.md): the mask loss did the most.
DEFAULT_METHOD = "layercam@final+ms+halfmax"

_METHOD = re.compile(r"^(?P<cam>[a-z+]+?)@(?P<layer>[a-z0-9]+)"
                     r"(?:\+(?P<smoothing>(?!halfmax)[a-z]+))?(?P<halfmax>\+halfmax)?$")


@dataclass(frozen=True)
class SaliencyMethod:
    cam: str = "gradcam"
    layer: str = "final"
    smoothing: str = "none"
    halfmax: bool = False

    @classmethod
    def parse(cls, text: str) -> "SaliencyMethod":
        match = _METHOD.match(str(text).strip().lower())
        method = None if match is None else cls(match["cam"], match["layer"], match["smoothing"] or "none",
                                                bool(match["halfmax"]))
        if method is None or method.cam not in CAMS or method.layer not in LAYERS or method.smoothing not in SMOOTHINGS:
            raise ValueError(f"Unknown saliency method {text!r}: write CAM@LAYER[+SMOOTHING][+halfmax] with CAM one "
                             f"of {', '.join(CAMS)}; LAYER one of {', '.join(LAYERS)}; SMOOTHING one of "
                             f"{', '.join(SMOOTHINGS[1:])} (e.g. 'gradcam@final' or 'layercam@final+ms+halfmax').")
        return method

    def __str__(self) -> str:
        return (f"{self.cam}@{self.layer}" + ("" if self.smoothing == "none" else f"+{self.smoothing}")
                + ("+halfmax" if self.halfmax else ""))


def all_methods() -> list[str]:
    """Every map the methods can draw; `+halfmax` is a display of any of them, so it is left out."""
    return [str(SaliencyMethod(c, l, s)) for l in LAYERS for s in SMOOTHINGS for c in CAMS]


def half_max(maps: torch.Tensor) -> torch.Tensor:
    """Maps scaled to max 1 -> the part above 0.5, rescaled to [0, 1] (the peak stays where it was)."""
    return (maps - 0.5).clamp_min(0) * 2


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


IDENTITY = (1.0, False, 0, 0)


def _copies(smoothing: str, width: int) -> list[tuple[float, bool, int, int]]:
    """(scale, mirror, dx, dy) per copy; shifts are in pixels of the model's input."""
    if smoothing == "none":
        return [IDENTITY]
    if smoothing == "flip":
        return [IDENTITY, (1.0, True, 0, 0)]
    if smoothing == "ms":
        return [(scale, mirror, 0, 0) for scale in MS_SCALES for mirror in (False, True)]
    s = max(1, round(SHIFT_FRACTION * width))
    shifted = [(1.0, mirror, dx, dy) for mirror in (False, True) for dx, dy in ((s, 0), (-s, 0), (0, s), (0, -s))]
    return _copies("flip", width) + shifted


def _translate(images: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """out[y, x] = in[y - dy, x - dx], edges replicated (no wrap-around, no black bands)."""
    if dx == 0 and dy == 0:
        return images
    s, (height, width) = max(abs(dx), abs(dy)), images.shape[-2:]
    padded = F.pad(images, (s, s, s, s), mode="replicate")
    return padded[..., s - dy : s - dy + height, s - dx : s - dx + width]


def _resize(images: torch.Tensor, size) -> torch.Tensor:
    return images if tuple(images.shape[-2:]) == tuple(size) else F.interpolate(
        images, size=tuple(size), mode="bilinear", align_corners=False)


def augment(pixel_values: torch.Tensor, copies) -> torch.Tensor:
    """(B, C, H, W) -> (B * len(copies), C, H, W), the copies of each image side by side; all copies
    must share one scale."""
    height, width = pixel_values.shape[-2:]
    scaled = _resize(pixel_values, (round(copies[0][0] * height), round(copies[0][0] * width)))
    out = [_translate(scaled.flip(-1) if mirror else scaled, dx, dy) for _, mirror, dx, dy in copies]
    return torch.stack(out, dim=1).flatten(0, 1)


def _undo(maps: torch.Tensor, copies, size=None) -> torch.Tensor:
    """(B, N, h, w) maps of copies of one scale -> the same maps on the original frame, (B, N, *size)."""
    back = [_translate(maps[:, i : i + 1], -dx, -dy)[:, 0] for i, (_, _, dx, dy) in enumerate(copies)]
    back = torch.stack([m.flip(-1) if mirror else m for m, (_, mirror, _, _) in zip(back, copies)], dim=1)
    return back if size is None else _resize(back, size)


def _unit_max(maps: torch.Tensor) -> torch.Tensor:
    # Maps are non-negative, so an all-zero map stays zero.
    return maps / maps.flatten(-2).amax(dim=-1)[..., None, None].clamp_min(1e-12)


def final_map_gradients(head_weights: torch.Tensor, classes: torch.Tensor, final: torch.Tensor) -> torch.Tensor:
    """d logit[class] / d final map, for a head whose logits are W · (the final map's mean over space) + b:
    W[class] / (h · w) at every position. (N, K) rows of W for (N,) classes -> (N, K, h, w)."""
    height, width = final.shape[-2:]
    rows = head_weights.to(final.dtype)[classes] / (height * width)
    return rows[:, :, None, None].expand_as(final)


def saliency_maps(run, pixel_values: torch.Tensor, methods,
                  head_weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """(logits, pooled features, {method: (B, H, W) map in [0, 1] on the model's input}).

    `run(pixel_values) -> (logits, pooled, final_map, hidden_states)` is one forward of the model.
    Every method comes from one forward and backward pass per input scale, over the union of the
    copies the methods need; a model without spatial maps gives an empty dict. `head_weights`, given
    only for a model whose logits are `head_weights` times the final map's mean over space plus a
    bias (ResNet's and MobileNetV2's heads; the caller checks), makes the gradients on the final map
    known without a backward pass (`final_map_gradients`): methods that read only the final map then
    cost one forward per scale, and give the same maps to float rounding.
    """
    methods = [m if isinstance(m, SaliencyMethod) else SaliencyMethod.parse(m) for m in methods]
    by_autograd = head_weights is None or any(m.layer != "final" for m in methods)
    batch, height, width = pixel_values.shape[0], *pixel_values.shape[-2:]
    # The unaltered input always comes first: it gives the class, the probabilities and the features.
    wanted = list(dict.fromkeys(c for m in methods for c in _copies(m.smoothing, width)))
    copies = list(dict.fromkeys([IDENTITY] + wanted))
    per_copy, outputs = {}, None  # (cam, layer) -> {copy: (B, H, W) map on the original frame, max 1}
    for scale in dict.fromkeys(c[0] for c in copies):
        group = [c for c in copies if c[0] == scale]
        if group == [IDENTITY] and IDENTITY not in wanted:  # only the answer is needed from this input
            with torch.no_grad():  # not inference_mode: the class indexes the other copies' backward
                logits, pooled, final, hidden_states = run(pixel_values)
            outputs = (logits.detach(), pooled.detach())
            if not pick_layers(final, hidden_states, height):  # no map (a ViT), and maybe no other input size
                return (*outputs, {})
            continue
        # Gradients by autograd need a graph, so this runs outside inference_mode; the input is made to
        # require grad so a graph exists even if someone froze the model's parameters.
        with torch.inference_mode(False), torch.set_grad_enabled(by_autograd):
            inputs = augment(pixel_values.detach(), group).requires_grad_(by_autograd)
            logits, pooled, final, hidden_states = run(inputs)
            if outputs is None:  # the first group holds the identity, as its first copy
                own = torch.arange(batch, device=logits.device) * len(group)
                outputs = (logits[own].detach(), pooled[own].detach())
            layers = pick_layers(final, hidden_states, inputs.shape[-2])
            if not layers:
                return (*outputs, {})
            top = outputs[0].argmax(dim=-1).repeat_interleave(len(group))
            if by_autograd:
                tensors = list({id(t): t for t in layers.values()}.values())
                score = logits.gather(1, top[:, None]).sum()  # images are independent: one backward for all
                grads = dict(zip(map(id, tensors), torch.autograd.grad(score, tensors)))
            else:
                grads = {id(layers["final"]): final_map_gradients(head_weights, top, layers["final"])}
        for kind, name in {(m.cam, n) for m in methods for n in _sources(m, layers)}:
            raw = _unit_max(cam(kind, layers[name].detach(), grads[id(layers[name])]))
            raw = _resize(raw[:, None], inputs.shape[-2:])[:, 0].view(batch, len(group), *inputs.shape[-2:])
            back = _undo(raw, group, (height, width))
            per_copy.setdefault((kind, name), {}).update({c: back[:, i] for i, c in enumerate(group)})
    maps = {}
    for method in methods:
        sources = _sources(method, layers)
        if not sources:
            continue
        used = _copies(method.smoothing, width)
        combined = sum(torch.stack([per_copy[method.cam, n][c] for c in used]).mean(dim=0) for n in sources)
        combined = _unit_max(combined / len(sources))
        maps[str(method)] = half_max(combined) if method.halfmax else combined
    return (*outputs, maps)


def _sources(method: SaliencyMethod, layers: dict) -> list[str]:
    """The layers a method reads that this model has (`fused` reads both)."""
    names = ("final", "stride16") if method.layer == "fused" else (method.layer,)
    return [n for n in names if n in layers]
