"""The Trainer this project trains with: `transformers.Trainer` plus two losses.

- Partial labels. A coarse "tumour, type unknown" row (Br35H `yes/`) allows a set of classes; its
  loss is minus the log of the summed probability of the allowed classes. For a single class this is
  ordinary cross-entropy. Label smoothing, when asked for, mixes in the uniform target as usual.
- Masks ("right for the right reasons"). For training slices with an expert tumour mask, the class
  activation map of the true class (the last feature map weighted by that class's row of the linear
  head, which is exactly what Grad-CAM computes for a global-average-pooled linear classifier) is
  turned into a spatial distribution by a softmax, and the loss is minus the log of its mass inside
  the mask. Slices without a mask (`notumor`, other collections) add nothing. A "some tumour" slice
  with a mask (a pasted tumour, `transplant.py`) is localized with the tumour class the model rates
  highest. No extra module is trained, so the saved model is a standard transformers image classifier.

`frozen_backbone` serves a linear probe before fine-tuning (LP-FT, Kumar et al. 2022): only the head trains
first, so that a random head's first large gradients do not distort the pretrained features.

`backbone_learning_rate_factor` scales the backbone's learning rate against the head's (discriminative fine-tuning,
Howard and Ruder 2018): a pretrained backbone that moves less keeps more of the features it brought, the argument of
LP-FT applied for the whole run rather than before it.

`style_mixing` (its own module) re-styles early feature maps with another training image's channel statistics
(MixStyle), in training only.

`WeightAveraging` averages the weights a run passes through in its later steps (SWA, Izmailov et al. 2018; dense,
after every step, as SWAD, Cha et al. 2021, which found it generalises to unseen domains); the average is served.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel
from transformers import Trainer, TrainerCallback

from .labels import CLASS_NAMES, DATASET_LABELS, allowed_classes
from .modeling import batch_norms, classifier_layer
from .style_mixing import mixing_points, style_mixing

# allowed[label] is a 0/1 row over the model's classes: which answers a dataset label accepts.
ALLOWED = torch.tensor([[float(c in allowed_classes(label)) for c in range(len(CLASS_NAMES))]
                        for label in range(len(DATASET_LABELS))])


def partial_label_loss(logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    log_probs = F.log_softmax(logits.float(), dim=-1)
    allowed = ALLOWED.to(logits.device)[labels]
    nll = -torch.logsumexp(log_probs.masked_fill(allowed == 0, float("-inf")), dim=-1)
    if label_smoothing:
        nll = (1 - label_smoothing) * nll - label_smoothing * log_probs.mean(dim=-1)
    return nll.mean()


def class_activation_maps(feature_map: torch.Tensor, model, classes: torch.Tensor) -> torch.Tensor:
    """(B, h, w) maps: each image's last feature map weighted by its class's row of the head."""
    weights = classifier_layer(model).weight[classes]  # (B, C)
    return torch.einsum("bchw,bc->bhw", feature_map, weights)


def localized_class(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The class whose map must lie in the mask: the label itself, or, for a coarse label, the
    allowed class with the largest logit (a pasted tumour has no type to point with)."""
    allowed = ALLOWED.to(logits.device)[labels]
    return logits.detach().masked_fill(allowed == 0, float("-inf")).argmax(dim=-1)


def mask_attention_loss(cam: torch.Tensor, masks: torch.Tensor) -> torch.Tensor | None:
    """Minus the log of the map's softmax mass inside the mask, over rows that have a tumour mask.

    `masks` is (B, H, W) with 1 inside, 0 outside and -1 where no mask is known. A feature-map cell
    counts as inside when any of its pixels is."""
    known = (masks >= 0).flatten(1).all(dim=1) & (masks > 0).flatten(1).any(dim=1)
    if not known.any():
        return None
    inside = F.adaptive_max_pool2d(masks[known].clamp(min=0).unsqueeze(1).float(), cam.shape[-2:]).flatten(1)
    attention = torch.softmax(cam[known].float().flatten(1), dim=1)
    return -torch.log((attention * inside).sum(dim=1) + 1e-6).mean()


@contextlib.contextmanager
def frozen_backbone(model):
    """Inside the block only the classifier head trains: the backbone's weights are frozen and its batch norm
    keeps its running statistics (momentum 0), so the pretrained network leaves the block as it came in."""
    weights = [weight for weight in model.base_model.parameters() if weight.requires_grad]
    norms = [(norm, norm.momentum) for norm in batch_norms(model.base_model)]
    for weight in weights:
        weight.requires_grad_(False)
    for norm, _ in norms:
        norm.momentum = 0.0
    try:
        yield model
    finally:
        for weight in weights:
            weight.requires_grad_(True)
        for norm, momentum in norms:
            norm.momentum = momentum


def check_backbone_learning_rate_factor(factor: float, name: str = "the backbone's learning-rate factor") -> None:
    """The one range rule for the factor, for the Trainer and for train_hf's early check of its flag."""
    if not 0 < factor <= 1:
        raise ValueError(f"{name} must be above 0 and at most 1, got {factor}.")


def scale_backbone_learning_rate(optimizer: torch.optim.Optimizer, model, factor: float) -> None:
    """Split each of the optimizer's parameter groups (the Trainer's weight-decay groups) into head and backbone,
    the backbone's learning rate multiplied by `factor`. Called before any step, so no optimizer state is lost; the
    scheduler, made afterwards, scales each group from its own learning rate."""
    backbone = {id(weight) for weight in model.base_model.parameters()}
    groups = list(optimizer.param_groups)
    optimizer.param_groups.clear()
    for group in groups:
        for in_backbone in (False, True):
            weights = [weight for weight in group["params"] if (id(weight) in backbone) == in_backbone]
            if weights:
                scale = factor if in_backbone else 1.0
                optimizer.add_param_group({**group, "params": weights, "lr": group["lr"] * scale})


class BrainTumorTrainer(Trainer):
    """Trainer with the partial-label loss, the optional mask loss (weight `mask_loss_weight`), optional style
    mixing in the training forward passes (`style_mixing_probability` per mixing point; 0 turns it off) and an
    optional lower learning rate for the backbone than for the head (`backbone_learning_rate_factor`)."""

    def __init__(self, *args, mask_loss_weight: float = 0.0, style_mixing_probability: float = 0.0,
                 backbone_learning_rate_factor: float = 1.0, **kwargs):
        check_backbone_learning_rate_factor(backbone_learning_rate_factor)
        super().__init__(*args, **kwargs)
        self.mask_loss_weight = mask_loss_weight
        self.style_mixing_probability = style_mixing_probability
        self.backbone_learning_rate_factor = backbone_learning_rate_factor
        # Found once, here: an architecture without known stages is an error before training, not at its first step.
        self.style_mixing_points = mixing_points(self.model) if style_mixing_probability else []

    def create_optimizer(self, model=None):
        made_here = self.optimizer is None  # an optimizer passed in by the caller is left as it is
        optimizer = super().create_optimizer(model)
        if made_here and self.backbone_learning_rate_factor != 1:
            inner = self.accelerator.unwrap_model(self.model if model is None else model)
            scale_backbone_learning_rate(optimizer, inner, self.backbone_learning_rate_factor)
        return optimizer

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs["labels"]
        masks = inputs.get("masks")
        use_masks = self.mask_loss_weight > 0 and masks is not None and model.training
        inner = self.accelerator.unwrap_model(model)  # DistributedDataParallel wraps it on several GPUs
        captured = {}
        # A hook for this one forward only: the feature map the head pools (Predictor reads it from hidden states).
        hook = (inner.base_model.register_forward_hook(lambda module, args, output: captured.update(out=output))
                if use_masks else None)
        mixing = (style_mixing(self.style_mixing_points, self.style_mixing_probability)
                  if self.style_mixing_points and model.training else contextlib.nullcontext())
        try:
            with mixing:
                outputs = model(pixel_values=inputs["pixel_values"])
        finally:
            if hook is not None:
                hook.remove()
        loss = partial_label_loss(outputs.logits, labels, self.args.label_smoothing_factor)
        if use_masks:
            feature_map = getattr(captured["out"], "last_hidden_state", None)
            if feature_map is not None and feature_map.ndim == 4:
                cam = class_activation_maps(feature_map, inner, localized_class(outputs.logits, labels))
                extra = mask_attention_loss(cam, masks)
                if extra is not None:
                    loss = loss + self.mask_loss_weight * extra
        return (loss, outputs) if return_outputs else loss


class WeightAveraging(TrainerCallback):
    """From `start_share` of the optimizer steps on, average the weights after every step. Batch-norm statistics
    are averaged with them (`use_buffers`), so the average needs no extra pass over the data to re-estimate them.
    The optimizer never sees the average: training runs exactly as without it. Not saved in checkpoints, so a
    resumed run averages only the steps after the resume."""

    def __init__(self, start_share: float):
        if not 0 <= start_share < 1:
            raise ValueError(f"weight averaging must start at a share of training from 0 to below 1, got {start_share}.")
        self.start_share = start_share
        self.average: AveragedModel | None = None

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step <= self.start_share * state.max_steps:
            return
        if self.average is None:
            self.average = AveragedModel(model, use_buffers=True)
        self.average.update_parameters(model)

    def apply_to(self, model) -> int:
        """Load the average into `model` (the Trainer's model, after it reloaded its best checkpoint); returns how
        many steps were averaged."""
        if self.average is None:
            raise RuntimeError("No step was averaged: training ended before the averaging started.")
        model.load_state_dict(self.average.module.state_dict())
        return int(self.average.n_averaged)
