"""brain_tumor.style_mixing: MixStyle's statistics, where it hooks, and that it acts in training only."""

import pytest
import torch
from helpers_models import IMAGE_SIZE, build_tiny_model

from brain_tumor.style_mixing import mix_random_styles, mix_styles, mixing_points, style_mixing


def _features(seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    # Four images whose channels have clearly different means and spreads ("styles").
    return (torch.randn(4, 3, 8, 8, generator=generator) * torch.tensor([1.0, 3.0, 0.5, 2.0]).view(4, 1, 1, 1)
            + torch.arange(4.0).view(4, 1, 1, 1) * 5)


def _statistics(features):
    return features.mean(dim=(2, 3)), features.var(dim=(2, 3)).sqrt()


def test_mixed_maps_carry_the_mixed_statistics_and_their_own_content():
    features = _features()
    weights, partners = torch.tensor([1.0, 0.0, 0.25, 0.5]), torch.tensor([1, 0, 3, 2])
    mixed = mix_styles(features, weights, partners)
    mean, std = _statistics(features)
    mixed_mean, mixed_std = _statistics(mixed)
    w = weights.view(-1, 1)
    torch.testing.assert_close(mixed_mean, w * mean + (1 - w) * mean[partners], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(mixed_std, w * std + (1 - w) * std[partners], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(mixed[0], features[0], atol=1e-4, rtol=1e-4)  # weight 1: its own style, unchanged
    # The content (the normalised map) is the image's own, whatever style it gets.
    content = (features - mean[..., None, None]) / std[..., None, None]
    torch.testing.assert_close((mixed - mixed_mean[..., None, None]) / mixed_std[..., None, None], content,
                               atol=1e-3, rtol=1e-3)


def test_the_gradient_reaches_the_content_not_the_statistics():
    features = _features().requires_grad_(True)
    mix_styles(features, torch.full((4,), 0.5), torch.tensor([1, 0, 3, 2])).sum().backward()
    # With the statistics detached, d(sum)/dx is the constant mixed_std / std of each map, not zero as it would be
    # through a normalisation that is differentiated.
    assert features.grad.abs().min() > 0.1


def test_random_mixing_leaves_a_single_image_alone_and_is_seeded():
    single = _features()[:1]
    assert mix_random_styles(single) is single
    torch.manual_seed(3)
    first = mix_random_styles(_features())
    torch.manual_seed(3)
    assert torch.equal(first, mix_random_styles(_features()))


@pytest.mark.parametrize("arch, expected", [("mobilenet_v2", 3), ("resnet", 1), ("convnext", 1)])
def test_mixing_points_are_stage_ends_before_the_last_stage(arch, expected):
    model, _ = build_tiny_model(arch)
    points = mixing_points(model)
    assert len(points) == expected
    if arch == "mobilenet_v2":
        blocks = list(model.mobilenet_v2.layer)
        # Each point is followed by a block that halves the resolution.
        assert all(blocks[blocks.index(p) + 1].conv_3x3.convolution.stride == (2, 2) for p in points)
    else:
        assert points == list(model.base_model.encoder.stages)[:1]


def test_an_architecture_without_known_stages_is_a_clear_error():
    from transformers import ViTConfig, ViTForImageClassification

    model = ViTForImageClassification(ViTConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                                intermediate_size=8, image_size=32, patch_size=8))
    with pytest.raises(ValueError, match="works with MobileNetV2, ResNet and ConvNeXt models, not 'vit'"):
        mixing_points(model)


def test_style_mixing_acts_in_training_only_and_leaves_no_hook_behind():
    model, _ = build_tiny_model("mobilenet_v2")
    for dropout in (m for m in model.modules() if isinstance(m, torch.nn.Dropout)):
        dropout.p = 0.0  # so that in training mode only the mixing can change the logits
    pixels = torch.randn(6, 3, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    model.train()
    with torch.no_grad():
        plain = model(pixel_values=pixels).logits
        with style_mixing(mixing_points(model), probability=1.0):
            mixed = model(pixel_values=pixels).logits
            model.eval()
            evaluated = model(pixel_values=pixels).logits
        after = model(pixel_values=pixels).logits
    assert not torch.allclose(plain, mixed, atol=1e-4)
    model.train()
    with torch.no_grad(), style_mixing(mixing_points(model), probability=0.0):
        never = model(pixel_values=pixels).logits
    torch.testing.assert_close(never, plain)
    assert all(not point._forward_hooks for point in mixing_points(model))
    torch.testing.assert_close(evaluated, after)  # eval mode: the same with and without the block
