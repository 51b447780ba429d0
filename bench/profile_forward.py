"""Where a single image's forward pass spends its CPU time, operator by operator and input shape.

    python bench/profile_forward.py                                  # the default model
    python bench/profile_forward.py --model runs/resnet18-half-192-e40 --calls 100

Runs the model (batch 1, at its image processor's size) under torch.profiler and prints the
operators by CPU time with their input shapes. This is how we found that PyTorch sends small
feature maps (under 20,480 values, batch 1) through `aten::_slow_conv2d_forward` (im2col) instead
of oneDNN (`aten::mkldnn_convolution`), which made us prefer fewer blocks in the late stages, and
that a MobileNetV2 with `tf_padding=True` pads every convolution's input in a separate operation
(`aten::pad`, 13 % of the default's forward pass on 2026-12-07).
It prints, it writes nothing, it checks nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from brain_tumor import DEFAULT_MODEL  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help="a model folder (default: the embedded model)")
    parser.add_argument("--calls", type=int, default=50, help="profiled forward passes (after 20 warm-up passes)")
    parser.add_argument("--rows", type=int, default=15, help="operator rows to print")
    args = parser.parse_args(argv)

    from transformers import AutoImageProcessor, AutoModelForImageClassification

    model = AutoModelForImageClassification.from_pretrained(args.model).eval()
    size = AutoImageProcessor.from_pretrained(args.model).size
    pixel_values = torch.randn(1, model.config.num_channels, size["height"], size["width"])
    with torch.inference_mode():
        for _ in range(20):
            model(pixel_values=pixel_values)
        with torch.profiler.profile(record_shapes=True) as profile:
            for _ in range(args.calls):
                model(pixel_values=pixel_values)
    print(f"{args.model}: {args.calls} forward passes of one {size['height']}x{size['width']} image, "
          f"{torch.get_num_threads()} torch threads")
    print(profile.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=args.rows))
    averages = profile.key_averages()
    self_times = {event.key: event.self_cpu_time_total for event in averages}
    total = sum(self_times.values())
    for name in ("aten::_slow_conv2d_forward", "aten::mkldnn_convolution"):
        print(f"{name}: {100 * self_times.get(name, 0) / total:.0f} % of the forward pass's CPU time")
    # The separate pad before each convolution of a MobileNetV2 with tf_padding=True; most of its time is spent
    # in the operations it calls (allocate, fill, copy), so it is counted with them.
    pad_time = sum(event.cpu_time_total for event in averages if event.key == "aten::pad")
    print(f"aten::pad with what it calls: {100 * pad_time / total:.0f} % of the forward pass's CPU time")
    print(f"forward pass: {total / args.calls / 1000:.2f} ms of CPU time per image (profiler overhead included)")


if __name__ == "__main__":
    main()
