"""Batch-norm statistics for converted weights whose batch norms were folded away (TFLite).

A converter that folds batch norm into the convolutions leaves identity batch norms behind; those are
a trap for fine-tuning (the first training-mode batch replaces the statistics). `calibrate_batch_norms`
measures real per-channel statistics on a few images and re-parametrises each batch norm so that its
eval output does not change; `default_calibration_images` gives ImageNet-like images for it.
"""

import torch
from PIL import Image


@torch.inference_mode()


def calibrate_batch_norms(model: torch.nn.Module, pixel_values: torch.Tensor, batch_size: int = 8):
    """Give every batch norm real running statistics without changing what the model computes in eval.

    Eval batch norm is the affine map y = a * x + c with a = weight / sqrt(running_var + eps) and
    c = bias - running_mean * a. We measure each channel's mean mu and variance var of x (the conv
    output) and solve for new parameters that keep a and c: running_mean = mu, running_var = var,
    weight = a * sqrt(var + eps), bias = c + mu * a. In training mode on images like the calibration
    set, batch statistics are then close to these, so the output stays close to the pretrained one.
    """
    model.eval()
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    # Per batch norm: [values seen per channel, per-channel sum, per-channel sum of squares], float64
    # because sum(x^2)/n - mu^2 cancels badly in float32.
    stats = {m: [0, 0.0, 0.0] for m in norms}

    def record(module, inputs):
        x = inputs[0]
        entry = stats[module]
        entry[0] += x.numel() // x.shape[1]
        entry[1] = entry[1] + x.sum(dim=(0, 2, 3), dtype=torch.float64)
        entry[2] = entry[2] + (x * x).sum(dim=(0, 2, 3), dtype=torch.float64)

    hooks = [m.register_forward_pre_hook(record) for m in norms]
    try:
        for start in range(0, len(pixel_values), batch_size):
            model(pixel_values=pixel_values[start : start + batch_size])
    finally:
        for hook in hooks:
            hook.remove()
    for norm in norms:
        n, total, total_sq = stats[norm]
        mu = total / n
        var = (total_sq / n - mu * mu).clamp_min(0.0)
        a = norm.weight.double() / torch.sqrt(norm.running_var.double() + norm.eps)
        c = norm.bias.double() - norm.running_mean.double() * a
        norm.running_mean.copy_(mu)
        norm.running_var.copy_(var)
        norm.weight.copy_(a * torch.sqrt(var + norm.eps))
        norm.bias.copy_(c + mu * a)


def default_calibration_images() -> list[Image.Image]:
    """16 deterministic views of the two photographs shipped with scikit-learn (a temple, a flower).

    Real photographs give ImageNet-like statistics, which is what the pretrained layers were trained
    on; synthetic noise would not. To fine-tune on another domain (MRI), passing a few dozen training
    images as `calibration_images` makes the first training batches match the statistics even better.
    """
    from sklearn.datasets import load_sample_images  # a dependency of the project already

    views = []
    for array in load_sample_images().images:
        image = Image.fromarray(array)
        width, height = image.size
        side = int(0.6 * min(width, height))
        # The whole photo, a central square and the four corner squares (60 % of the short side).
        x0, y0 = (width - side) // 2, (height - side) // 2
        boxes = [(0, 0, width, height), (x0, y0, x0 + side, y0 + side)]
        boxes += [(x, y, x + side, y + side) for x in (0, width - side) for y in (0, height - side)]
        views += [image.crop(box) for box in boxes]
        views += [image.crop(box).transpose(Image.Transpose.FLIP_LEFT_RIGHT) for box in boxes[:2]]
    return views
