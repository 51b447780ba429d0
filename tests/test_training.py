"""brain_tumor.training: the partial-label loss, the mask loss, class activation maps and the Trainer."""

import math

import pytest
import torch
import torch.nn.functional as F
from helpers_models import IMAGE_SIZE, build_tiny_model
from transformers import TrainerCallback, TrainingArguments

from brain_tumor.labels import ANY_TUMOR, CLASS_NAMES, DATASET_LABELS
from brain_tumor.saliency import cam
from brain_tumor.training import (
    BrainTumorTrainer,
    WeightAveraging,
    frozen_backbone,
    class_activation_maps,
    localized_class,
    mask_attention_loss,
    partial_label_loss,
)

GLIOMA, MENINGIOMA, NOTUMOR, PITUITARY = (CLASS_NAMES.index(n) for n in ("glioma", "meningioma", "notumor",
                                                                          "pituitary"))
TUMOR = DATASET_LABELS.index(ANY_TUMOR)


def random_logits(rows: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(rows, len(CLASS_NAMES), generator=torch.Generator().manual_seed(seed)) * 2


# --- partial-label loss ---------------------------------------------------------------------------------

def test_partial_label_loss_is_cross_entropy_for_fine_labels():
    logits, labels = random_logits(12), torch.tensor([0, 1, 2, 3] * 3)
    assert partial_label_loss(logits, labels).item() == pytest.approx(F.cross_entropy(logits, labels).item(),
                                                                      rel=1e-6)


def test_partial_label_loss_for_the_coarse_label_is_minus_log_of_the_tumour_probabilities():
    logits = random_logits(5, seed=1)
    probabilities = torch.softmax(logits, dim=-1)
    expected = -torch.log(probabilities[:, GLIOMA] + probabilities[:, MENINGIOMA] + probabilities[:, PITUITARY])
    loss = partial_label_loss(logits, torch.full((5,), TUMOR))
    assert loss.item() == pytest.approx(expected.mean().item(), rel=1e-6)
    # Mixed batch: the mean of the per-row losses, each by its own rule.
    labels = torch.tensor([TUMOR, NOTUMOR, TUMOR, GLIOMA, TUMOR])
    per_row = torch.where(labels == TUMOR, expected, F.cross_entropy(logits, labels.clamp(max=3), reduction="none"))
    assert partial_label_loss(logits, labels).item() == pytest.approx(per_row.mean().item(), rel=1e-6)


def test_partial_label_loss_is_near_zero_when_the_allowed_classes_hold_all_the_probability():
    logits = torch.tensor([[2.0, -1.0, -40.0, 0.5], [0.0, 0.0, -40.0, 0.0]])
    assert partial_label_loss(logits, torch.tensor([TUMOR, TUMOR])).item() < 1e-6
    # The same rows labelled notumor cost about 40 nats each.
    assert partial_label_loss(logits, torch.tensor([NOTUMOR, NOTUMOR])).item() > 35


def test_partial_label_loss_gradients_flow_and_leave_the_split_between_tumour_classes_free():
    logits = random_logits(3, seed=2).requires_grad_(True)
    partial_label_loss(logits, torch.tensor([TUMOR] * 3)).backward()
    probabilities = torch.softmax(logits.detach(), dim=-1)
    tumour = torch.tensor([GLIOMA, MENINGIOMA, PITUITARY])
    # d/dz of -log(sum of allowed p) = p_j - 1[j allowed] p_j / P_allowed, per row; the loss is a mean.
    allowed_mass = probabilities[:, tumour].sum(dim=1, keepdim=True)
    expected = probabilities.clone()
    expected[:, tumour] -= probabilities[:, tumour] / allowed_mass
    assert torch.allclose(logits.grad, expected / 3, atol=1e-6)
    assert (logits.grad[:, NOTUMOR] > 0).all()  # gradient descent lowers the notumor logit
    assert torch.allclose(logits.grad.sum(dim=1), torch.zeros(3), atol=1e-6)


@pytest.mark.parametrize("smoothing", [0.1, 0.3])
def test_label_smoothing_mixes_in_the_uniform_target(smoothing):
    logits, labels = random_logits(8, seed=3), torch.tensor([0, 1, 2, 3] * 2)
    assert partial_label_loss(logits, labels, smoothing).item() == pytest.approx(
        F.cross_entropy(logits, labels, label_smoothing=smoothing).item(), rel=1e-6)
    coarse = torch.full((8,), TUMOR)
    log_probabilities = torch.log_softmax(logits, dim=-1)
    allowed = torch.logsumexp(log_probabilities[:, [GLIOMA, MENINGIOMA, PITUITARY]], dim=1)
    expected = (1 - smoothing) * -allowed + smoothing * -log_probabilities.mean(dim=1)
    assert partial_label_loss(logits, coarse, smoothing).item() == pytest.approx(expected.mean().item(), rel=1e-6)


# --- mask loss ------------------------------------------------------------------------------------------

def _mask(rows: int, size: int = 8) -> torch.Tensor:
    """A tumour in the top-left quadrant of each (size x size) mask."""
    masks = torch.zeros(rows, size, size)
    masks[:, : size // 2, : size // 2] = 1
    return masks


def test_mask_loss_is_minus_log_of_the_share_of_the_map_inside_the_mask():
    uniform = torch.zeros(1, 4, 4)  # softmax of a flat map: every cell 1/16; the mask covers 4 of 16 cells
    assert mask_attention_loss(uniform, _mask(1)).item() == pytest.approx(-math.log(0.25 + 1e-6), rel=1e-5)
    inside, outside = torch.zeros(1, 4, 4), torch.zeros(1, 4, 4)
    inside[0, :2, :2] = 5.0
    outside[0, 2:, 2:] = 5.0
    assert mask_attention_loss(inside, _mask(1)) < mask_attention_loss(uniform, _mask(1)) \
        < mask_attention_loss(outside, _mask(1))


def test_mask_loss_ignores_rows_without_a_mask_and_is_none_when_no_row_has_one():
    cams = torch.randn(3, 4, 4, generator=torch.Generator().manual_seed(0))
    masks = torch.cat([_mask(1), torch.full((1, 8, 8), -1.0), torch.zeros(1, 8, 8)])  # mask, unknown, empty
    assert mask_attention_loss(cams, masks).item() == pytest.approx(mask_attention_loss(cams[:1], masks[:1]).item())
    assert mask_attention_loss(cams[1:], masks[1:]) is None
    assert mask_attention_loss(cams, torch.full((3, 8, 8), -1.0)) is None


def test_mask_loss_cell_counts_as_inside_when_any_of_its_pixels_is():
    masks = torch.zeros(1, 8, 8)
    masks[0, 0, 0] = 1  # one pixel: the 2 x 2 block of the first of 16 cells
    assert mask_attention_loss(torch.zeros(1, 4, 4), masks).item() == pytest.approx(-math.log(1 / 16 + 1e-6),
                                                                                    rel=1e-5)


# --- class activation maps ------------------------------------------------------------------------------

def _pixels(count: int = 2) -> torch.Tensor:
    return torch.randn(count, 3, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(4))


def test_class_activation_maps_are_grad_cam_up_to_the_relu_for_a_resnet():
    # The map the mask loss trains is the one the app's Grad-CAM draws (brain_tumor.saliency.cam).
    model, _ = build_tiny_model("resnet")
    pixel_values = _pixels()[:1]
    captured = {}
    hook = model.base_model.register_forward_hook(lambda module, args, output: captured.update(out=output))
    logits = model(pixel_values=pixel_values).logits
    hook.remove()
    feature_map = captured["out"].last_hidden_state
    top = logits.argmax(dim=1)
    grad_cam = cam("gradcam", feature_map, torch.autograd.grad(logits[0, top[0]], feature_map)[0])
    ours = class_activation_maps(feature_map, model, top)
    cells = feature_map.shape[-2] * feature_map.shape[-1]  # Grad-CAM's weights average the gradient over cells
    assert torch.allclose(torch.relu(ours) / cells, grad_cam, atol=1e-6)


def test_class_activation_maps_use_each_rows_own_class():
    model, _ = build_tiny_model("resnet")
    pixel_values, classes = _pixels(), torch.tensor([MENINGIOMA, PITUITARY])
    captured = {}
    hook = model.base_model.register_forward_hook(lambda module, args, output: captured.update(out=output))
    logits = model(pixel_values=pixel_values).logits
    hook.remove()
    feature_map = captured["out"].last_hidden_state
    cams = class_activation_maps(feature_map, model, classes)
    for row, cls in enumerate(classes):
        gradient = torch.autograd.grad(logits[row, cls], feature_map, retain_graph=True)[0][row]
        weights = gradient.mean(dim=(1, 2), keepdim=True)
        grad_cam = (weights * feature_map[row]).sum(dim=0)
        assert torch.allclose(cams[row] / (feature_map.shape[-2] * feature_map.shape[-1]), grad_cam, atol=1e-6)


# --- the Trainer ----------------------------------------------------------------------------------------

def _trainer(tmp_path, weight: float, model) -> BrainTumorTrainer:
    args = TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True)
    return BrainTumorTrainer(model=model, args=args, mask_loss_weight=weight)


def test_trainer_adds_the_weighted_mask_loss_for_rows_with_a_mask_while_training(tmp_path):
    model, _ = build_tiny_model("resnet")
    model.train()
    labels = torch.tensor([GLIOMA, TUMOR, NOTUMOR, PITUITARY])
    masks = torch.full((4, IMAGE_SIZE, IMAGE_SIZE), -1.0)
    masks[0], masks[1] = _mask(1, IMAGE_SIZE)[0], _mask(1, IMAGE_SIZE)[0]  # row 1: coarse, a pasted tumour
    inputs = {"pixel_values": _pixels(4), "labels": labels, "masks": masks}
    plain = _trainer(tmp_path, 0.0, model).compute_loss(model, inputs)
    with_masks = _trainer(tmp_path, 0.5, model).compute_loss(model, inputs)
    feature_map = model.base_model(inputs["pixel_values"]).last_hidden_state
    logits = model(pixel_values=inputs["pixel_values"]).logits
    # The coarse row is localized with the tumour class the model rates highest.
    coarse_class = max((GLIOMA, MENINGIOMA, PITUITARY), key=lambda c: logits[1, c].item())
    classes = torch.tensor([GLIOMA, coarse_class])
    expected = mask_attention_loss(class_activation_maps(feature_map[:2], model, classes), masks[:2])
    assert torch.equal(localized_class(logits, labels)[:2], classes)
    assert with_masks.item() == pytest.approx(plain.item() + 0.5 * expected.item(), rel=1e-5)
    assert plain.item() == pytest.approx(partial_label_loss(logits, labels).item(), rel=1e-5)
    with_masks.backward()
    assert all(p.grad is not None for p in model.classifier.parameters())
    model.eval()  # evaluation: no mask loss
    evaluated = _trainer(tmp_path, 0.5, model).compute_loss(model, inputs)
    assert evaluated.item() == pytest.approx(
        partial_label_loss(model(pixel_values=inputs["pixel_values"]).logits, labels).item(), rel=1e-5)


# --- linear probe before fine-tuning ---------------------------------------------------------------------

class _ListDataset(torch.utils.data.Dataset):
    def __init__(self, rows):
        self.rows = rows

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, index):
        return self.rows[index]


def _collate(rows):
    return {"pixel_values": torch.stack([row["pixel_values"] for row in rows]),
            "labels": torch.tensor([row["labels"] for row in rows])}


def test_frozen_backbone_trains_the_head_alone_and_hands_every_layer_back(tmp_path):
    model, _ = build_tiny_model("mobilenet_v2")  # has batch norm: its running statistics must not move either
    pixels = _pixels(16) * 3 + 1  # far from the statistics batch norm was built with
    rows = [{"pixel_values": pixels[i], "labels": i % len(CLASS_NAMES)} for i in range(16)]
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [norm.momentum for norm in norms]
    args = TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True, max_steps=3,
                             per_device_train_batch_size=8, learning_rate=0.1, save_strategy="no")
    with frozen_backbone(model):
        BrainTumorTrainer(model=model, args=args, train_dataset=_ListDataset(rows), data_collator=_collate).train()
    after = model.state_dict()
    head = {f"classifier.{name}" for name, _ in model.classifier.named_parameters()}
    moved = {name for name in before if not torch.equal(before[name], after[name])}
    assert head <= moved
    assert moved - head <= {name for name in before if name.endswith("num_batches_tracked")}
    assert all(weight.requires_grad for weight in model.parameters())
    assert norms and [norm.momentum for norm in norms] == momenta


class _Snapshots(TrainerCallback):
    """The model's weights and batch-norm statistics after every optimizer step."""

    def __init__(self):
        self.states = []

    def on_step_end(self, args, state, control, model=None, **kwargs):
        self.states.append({name: tensor.clone() for name, tensor in model.state_dict().items()})


def test_weight_averaging_serves_the_mean_of_the_later_steps_and_leaves_training_alone(tmp_path):
    model, _ = build_tiny_model("mobilenet_v2")  # batch norm: its running statistics are averaged too
    initial = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    pixels = _pixels(16) * 3 + 1
    rows = [{"pixel_values": pixels[i], "labels": i % len(CLASS_NAMES)} for i in range(16)]
    args = TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True, max_steps=4, seed=0,
                             per_device_train_batch_size=4, learning_rate=0.05, save_strategy="no")

    def train(*callbacks):
        model.load_state_dict(initial)
        snapshots = _Snapshots()
        BrainTumorTrainer(model=model, args=args, train_dataset=_ListDataset(rows), data_collator=_collate,
                          callbacks=[*callbacks, snapshots]).train()
        return snapshots.states

    plain = train()
    averaging = WeightAveraging(0.5)
    states = train(averaging)
    # The optimizer never sees the average: the same steps as without it.
    assert all(torch.equal(a[name], b[name]) for a, b in zip(plain, states) for name in a)
    assert averaging.apply_to(model) == 2  # steps 3 and 4 of 4
    served = model.state_dict()
    floats = [name for name, tensor in served.items() if tensor.is_floating_point()]
    assert any("running_mean" in name for name in floats)
    for name in floats:
        torch.testing.assert_close(served[name], (states[2][name] + states[3][name]) / 2)
    assert not torch.equal(served[floats[0]], states[3][floats[0]])


def test_weight_averaging_that_never_started_is_a_clear_error():
    model, _ = build_tiny_model("mobilenet_v2")
    with pytest.raises(ValueError, match="from 0 to below 1, got 1"):
        WeightAveraging(1)
    with pytest.raises(RuntimeError, match="No step was averaged"):
        WeightAveraging(0.5).apply_to(model)


# --- the backbone's learning rate ------------------------------------------------------------------------

def _trainer_with_backbone_factor(tmp_path, factor, **settings):
    model, _ = build_tiny_model("mobilenet_v2")
    rows = [{"pixel_values": pixels, "labels": i % len(CLASS_NAMES)} for i, pixels in enumerate(_pixels(16))]
    args = TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True, per_device_train_batch_size=8,
                             save_strategy="no", **settings)
    return BrainTumorTrainer(model=model, args=args, train_dataset=_ListDataset(rows), data_collator=_collate,
                             backbone_learning_rate_factor=factor)


def test_the_backbone_learns_at_its_share_of_the_heads_rate_in_every_weight_decay_group(tmp_path):
    trainer = _trainer_with_backbone_factor(tmp_path, 0.2, learning_rate=1e-3, weight_decay=0.05)
    optimizer = trainer.create_optimizer()
    model = trainer.model
    backbone = {id(weight) for weight in model.base_model.parameters()}
    grouped = [id(weight) for group in optimizer.param_groups for weight in group["params"]]
    assert sorted(grouped) == sorted(id(weight) for weight in model.parameters())  # each weight once, none lost
    rates = {(group["weight_decay"], id(group["params"][0]) in backbone): group["lr"]
             for group in optimizer.param_groups}
    for group in optimizer.param_groups:  # a group is all backbone or all head
        assert len({id(weight) in backbone for weight in group["params"]}) == 1
    assert rates == pytest.approx({(0.05, False): 1e-3, (0.05, True): 2e-4, (0.0, False): 1e-3, (0.0, True): 2e-4})


def test_the_schedule_scales_backbone_and_head_alike(tmp_path):
    trainer = _trainer_with_backbone_factor(tmp_path, 0.25, learning_rate=1e-2, max_steps=4,
                                            lr_scheduler_type="cosine", warmup_steps=1)
    backbone = {id(weight) for weight in trainer.model.base_model.parameters()}
    rates = []

    class Rates(TrainerCallback):
        def on_step_end(self, args, state, control, optimizer=None, **kwargs):
            rates.append([(id(group["params"][0]) in backbone, group["lr"]) for group in optimizer.param_groups])

    trainer.add_callback(Rates())
    trainer.train()
    assert len(rates) == 4
    for step in rates:
        head = {lr for in_backbone, lr in step if not in_backbone}
        body = {lr for in_backbone, lr in step if in_backbone}
        assert len(head) == 1 and len(body) == 1
        assert body.pop() == pytest.approx(0.25 * head.pop())
    assert rates[1][0][1] > rates[3][0][1]  # the cosine decays, both groups with it


def test_a_backbone_factor_of_one_leaves_the_trainers_optimizer_alone(tmp_path):
    trainer = _trainer_with_backbone_factor(tmp_path, 1.0, learning_rate=1e-3, weight_decay=0.05)
    assert len(trainer.create_optimizer().param_groups) == 2  # the Trainer's own decay / no-decay pair


@pytest.mark.parametrize("factor", [0, 1.5])
def test_a_backbone_factor_out_of_range_is_a_clear_error(tmp_path, factor):
    with pytest.raises(ValueError, match=f"above 0 and at most 1, got {factor}"):
        _trainer_with_backbone_factor(tmp_path, factor, learning_rate=1e-3)
