"""Map a picture on the model's input back onto the decoded slice, pixel for pixel.

Image processors resize, and some then crop (ConvNeXt's `crop_pct`, `do_center_crop`), each class
with its own size conventions. Rather than re-deriving each one, the processor is asked: it is
given a slice-sized probe whose red channel rises linearly with x and green with y, plus an
all-black and an all-white image to undo its rescaling and normalisation. Where each input pixel
came from can then be read off, and a straight line per axis fitted to it (resize and crop are
affine per axis). Works for any processor that resizes and crops, whatever its class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


@dataclass(frozen=True)
class AxisMap:
    """Model-input pixel index j (centre) comes from slice coordinate scale * j + offset."""

    scale: float
    offset: float


def _fit_axis(source: np.ndarray, slice_length: int) -> AxisMap:
    """Fit source coordinate = scale * j + offset on the central half (edges blur under resampling)."""
    j = np.arange(len(source), dtype=np.float64)
    middle = slice(len(source) // 4, max(len(source) // 4 + 2, 3 * len(source) // 4))
    scale, offset = np.polyfit(j[middle], source[middle], 1)
    # An 8-bit ramp locates a pixel to within slice_length / 255; more than that means the
    # processor does something other than resize and crop (pads, rotates, tiles).
    tolerance = 1.0 + 1.5 * slice_length / 255
    if scale <= 0 or np.abs(scale * j[middle] + offset - source[middle]).max() > tolerance:
        raise ValueError("cannot map the saliency back onto the slice: the image processor does more than "
                         "resize and crop")
    return AxisMap(float(scale), float(offset))


def probe_geometry(to_pixel_values, width: int, height: int) -> tuple[AxisMap, AxisMap]:
    """(x map, y map) for slices of this size; `to_pixel_values(list of RGB PIL) -> (N, C, H, W)`."""
    ramp = np.zeros((height, width, 3), dtype=np.uint8)
    ramp[..., 0] = np.round(np.linspace(0, 255, width))[None, :]
    ramp[..., 1] = np.round(np.linspace(0, 255, height))[:, None]
    probes = [Image.fromarray(ramp), Image.new("RGB", (width, height), 0), Image.new("RGB", (width, height), "white")]
    values = to_pixel_values(probes).double().cpu()
    if values.shape[1] < 2:
        raise ValueError("cannot map the saliency back onto the slice: the model takes a single channel")
    black, white = values[1, :2], values[2, :2]
    fraction = ((values[0, :2] - black) / (white - black).clamp_min(1e-9)).numpy()
    x_source = np.median(fraction[0], axis=0) * (width - 1)  # per input column
    y_source = np.median(fraction[1], axis=1) * (height - 1)  # per input row
    return _fit_axis(x_source, width), _fit_axis(y_source, height)


def to_slice(maps: torch.Tensor, geometry: tuple[AxisMap, AxisMap], width: int, height: int) -> np.ndarray:
    """(..., H, W) maps on the model's input -> float32 (..., height, width) on the slice, each
    scaled to max 1 (unless all zero), and 0 where the processor cropped the slice away."""
    x_map, y_map = geometry
    lead, (in_height, in_width) = maps.shape[:-2], maps.shape[-2:]
    j = (torch.arange(width, dtype=torch.float64) - x_map.offset) / x_map.scale  # input column per slice x
    i = (torch.arange(height, dtype=torch.float64) - y_map.offset) / y_map.scale
    gx, gy = (2 * (j + 0.5) / in_width - 1), (2 * (i + 0.5) / in_height - 1)  # align_corners=False units
    grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], dim=-1)[None].float().to(maps.device)
    flat = maps.reshape(1, -1, in_height, in_width).float()
    sampled = F.grid_sample(flat, grid, mode="bilinear", padding_mode="border", align_corners=False)[0]
    # Half an input pixel of slack, so the fit's rounding cannot blank the edge of an uncropped slice.
    inside_x, inside_y = gx.abs() <= 1 + 1 / in_width, gy.abs() <= 1 + 1 / in_height
    sampled = sampled * (inside_y[:, None] & inside_x[None, :]).to(sampled)
    sampled = sampled.clamp_min(0) / sampled.flatten(1).amax(dim=1)[:, None, None].clamp_min(1e-12)
    return sampled.reshape(*lead, height, width).clamp(0, 1).cpu().numpy().astype(np.float32)
