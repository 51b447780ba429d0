"""How long one training step takes with the weights in PyTorch's default layout and channels last.

    python bench/train_step_layout.py                                   # the default model, batch 64
    python bench/train_step_layout.py --model runs/mnv2 --batch_size 32 --rounds 7

A step here is what Trainer does per batch: forward with labels, backward, an AdamW step, on random
images at the model's own input size (the time does not depend on the pixels). The two layouts
take turns, their order reversed every other round, as in bench/latency_rounds.py; for each
layout the median over rounds of the median step, and the rounds in which channels last was faster.
This is what `train_hf.py --channels_last` changes. It prints the figures and writes
bench/results/<output_name>.md and .json; it decides nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import machine_info, machine_line, markdown_table, print_machine, write_results  # noqa: E402
from bench.latency_rounds import round_order  # noqa: E402
from brain_tumor import DEFAULT_MODEL  # noqa: E402

LAYOUTS = ("as stored", "channels last")


def median_step_seconds(model, optimizer, pixels, labels, steps: int) -> float:
    times = []
    for _ in range(steps + 1):  # the first step of each turn is a warm-up after the layout change
        start = time.perf_counter()
        model(pixel_values=pixels, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        times.append(time.perf_counter() - start)
    return float(np.median(times[1:]))


def main(argv=None) -> None:
    import torch
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    from brain_tumor.modeling import channels_last
    from brain_tumor.transforms import processor_size

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help="a model folder (default: the embedded model)")
    parser.add_argument("--batch_size", type=int, default=64, help="images per step (the CPU recipes' 64)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; each times both layouts")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per layout and round")
    parser.add_argument("--output_name", default="train_step_layout", help="file name stem under bench/results/")
    args = parser.parse_args(argv)

    machine = machine_info()
    print_machine(machine)
    model = AutoModelForImageClassification.from_pretrained(args.model).train()
    height, width = processor_size(AutoImageProcessor.from_pretrained(args.model))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    generator = torch.Generator().manual_seed(0)
    pixels = torch.randn(args.batch_size, 3, height, width, generator=generator)
    labels = torch.randint(0, model.config.num_labels, (args.batch_size,), generator=generator)
    seconds = {layout: [] for layout in LAYOUTS}
    for round_index in range(args.rounds):
        for layout in round_order(list(LAYOUTS), round_index):
            if layout == "channels last":  # the very call train_hf.py --channels_last makes
                channels_last(model)
            else:
                model.to(memory_format=torch.contiguous_format)
            seconds[layout].append(median_step_seconds(model, optimizer, pixels, labels, args.steps))
        print(f"round {round_index + 1}: " + ", ".join(f"{k} {v[-1]:.3f} s" for k, v in seconds.items()), flush=True)

    faster = int(sum(b < a for a, b in zip(seconds["as stored"], seconds["channels last"])))
    rows = [[layout, f"{np.median(seconds[layout]):.3f}", " / ".join(f"{s:.3f}" for s in seconds[layout])]
            for layout in LAYOUTS]
    markdown = "\n".join([
        "# One training step, two weight layouts", "",
        f"Command: `python bench/{Path(__file__).name} {' '.join(sys.argv[1:])}`  ",
        machine_line(machine) + "  ",
        f"Model `{args.model}`, batch {args.batch_size} at {height} x {width}: forward with labels, backward, AdamW. "
        f"{args.rounds} rounds of {args.steps} timed steps per layout (after one untimed), order reversed every other "
        f"round. Channels last was faster in {faster} of {args.rounds} rounds.", "",
        markdown_table(["layout", "median step (s)", "each round's median step (s)"], rows),
    ])
    print("\n" + markdown)
    write_results(args.output_name, {"machine": machine, "argv": sys.argv[1:], "batch_size": args.batch_size,
                                     "input_size": [height, width], "seconds_per_step": seconds,
                                     "rounds_channels_last_faster": faster}, markdown)


if __name__ == "__main__":
    main()
