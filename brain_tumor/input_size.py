"""Retarget a pretrained checkpoint to a square input size (`--image_size N`): N x N, whole slice.

Checkpoints bring image processors of several families, each with its own idea of "size":
- ViT, DeiT, Swin, EfficientNet, BiT, MobileNetV2, ...: their resize takes {"height", "width"};
  turning the centre crop off gives the whole slice squeezed to N x N.
- ConvNeXt, ResNet, RegNet (`ConvNextImageProcessor`): its resize takes only `shortest_edge`.
  Below 384 it resizes to shortest_edge / crop_pct and centre-crops; even with crop_pct = 1 it
  keeps the aspect ratio and so crops the long side of a non-square slice. It is rebuilt as a
  plain resize processor (`ViTImageProcessor`) with the same mean, std, resampling and backend.
Rather than keep a list of classes, each candidate is tried on a non-square probe image: the
first one that outputs N x N wins. The processor is saved beside the model, so `pipeline()`
resizes exactly as training did.

ViT-like models also learned one position embedding per patch of the checkpoint's size; these
are resampled to the new patch grid (transformers' own bicubic interpolation) and
`config.image_size` is updated, so the saved model loads and runs at N x N without extra flags.
"""

from __future__ import annotations

import logging

import torch
from PIL import Image
from torch import nn
from transformers.image_processing_backends import TorchvisionBackend

logger = logging.getLogger(__name__)

# What a plain resize processor keeps from the checkpoint's own processor.
_PLAIN_RESIZE_KEYS = ("resample", "do_rescale", "rescale_factor", "do_normalize", "image_mean", "image_std",
                      "do_convert_rgb")


class InputSizeError(ValueError):
    """A checkpoint that cannot be run at the requested input size."""


def square_resize_processor(processor, image_size: int):
    """A processor like `processor` that resizes any image to image_size x image_size, nothing cropped."""
    square = {"height": image_size, "width": image_size}
    settings = processor.to_dict()
    same_family = type(processor).from_dict({**settings, "do_resize": True, "size": square, "do_center_crop": False})
    if output_size(same_family, image_size) == (image_size, image_size):
        return same_family
    # Same backend as the checkpoint's processor: torchvision resizes slightly differently from PIL.
    if isinstance(processor, TorchvisionBackend):
        from transformers import ViTImageProcessor as plain_class
    else:
        from transformers import ViTImageProcessorPil as plain_class
    kept = {key: settings[key] for key in _PLAIN_RESIZE_KEYS if settings.get(key) is not None}
    plain = plain_class(**kept, do_resize=True, size=square)
    if output_size(plain, image_size) != (image_size, image_size):
        raise InputSizeError(f"Could not make {type(processor).__name__} resize to {image_size} x {image_size}.")
    logger.info("%s resizes by shortest edge and crops; using %s (plain %d x %d resize, same mean/std) instead.",
                type(processor).__name__, type(plain).__name__, image_size, image_size)
    return plain


def output_size(processor, image_size: int) -> tuple[int, int] | None:
    """(height, width) the processor makes of a non-square probe image, or None if it cannot process it."""
    probe = Image.new("RGB", (2 * image_size + 1, image_size // 2 + 1), (90, 90, 90))
    try:
        pixel_values = processor(probe, return_tensors="pt")["pixel_values"]
    except (AttributeError, KeyError, TypeError, ValueError):  # e.g. ConvNeXt's resize without shortest_edge
        return None
    return tuple(pixel_values.shape[-2:])


@torch.no_grad()
def fit_model_to_input_size(model: nn.Module, image_size: int) -> None:
    """Resample learned position embeddings (ViT, DeiT, ...) for image_size x image_size inputs, then check
    that the model accepts such inputs. Convolutional models need nothing: they pool globally."""
    for module in model.modules():
        table, patches = getattr(module, "position_embeddings", None), getattr(module, "patch_embeddings", None)
        if not (isinstance(table, nn.Parameter) and patches is not None and hasattr(module, "interpolate_pos_encoding")):
            continue
        grid = image_size // module.patch_size
        extra_tokens = table.shape[1] - patches.num_patches  # [CLS] (and DeiT's distillation token)
        placeholder = table.new_zeros(1, extra_tokens + grid * grid, table.shape[-1])
        module.position_embeddings = nn.Parameter(
            module.interpolate_pos_encoding(placeholder, image_size, image_size).contiguous())
        patches.image_size = module.image_size = (image_size, image_size)
        patches.num_patches = grid * grid
        model.config.image_size = image_size
    channels = getattr(model.config, "num_channels", 3)
    was_training = model.training
    try:
        model.eval()(pixel_values=torch.zeros(1, channels, image_size, image_size))
    except (RuntimeError, ValueError) as error:
        raise InputSizeError(f"{type(model).__name__} cannot run on {image_size} x {image_size} inputs "
                             f"({str(error).strip().splitlines()[0]}). Leave out --image_size to use the "
                             "checkpoint's own input size, or choose another size.") from error
    finally:
        model.train(was_training)
