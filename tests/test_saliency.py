"""Saliency maps: the CAM methods, smoothing, mapping back onto the slice, and that a map points
at what decides the class (a tiny model trained here on synthetic squares)."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers_models import IMAGE_SIZE, build_tiny_model
from PIL import Image

from brain_tumor.inference import Predictor
from brain_tumor.labels import CLASS_NAMES
from brain_tumor.saliency import (
    DEFAULT_METHOD,
    SaliencyMethod,
    _copies,
    _undo,
    all_methods,
    augment,
    half_max,
    saliency_maps,
)
from brain_tumor.slice_geometry import probe_geometry

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.jpg"))


def _noise_slice(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width), dtype=np.uint8), mode="L")


@pytest.fixture(scope="module")
def predictors():
    return {arch: Predictor(*build_tiny_model(arch)) for arch in ("resnet", "convnext", "mobilenet_v2")}


# --- mapping back onto the slice ----------------------------------------------------------------


@pytest.mark.parametrize("width, height", [(224, 224), (96, 64)])
def test_geometry_probe_matches_the_processors_arithmetic(width, height):
    from transformers import ConvNextImageProcessorPil, ViTImageProcessorPil

    # A plain resize to 48 x 40 (aspect not kept): input pixel j's centre is (j + 0.5) * W / 48 - 0.5.
    warp = ViTImageProcessorPil(size={"height": 40, "width": 48})
    x_map, y_map = probe_geometry(lambda images: warp(images=images, return_tensors="pt")["pixel_values"],
                                  width, height)
    for j in (12, 24, 36):
        assert x_map.scale * j + x_map.offset == pytest.approx((j + 0.5) * width / 48 - 0.5, abs=1.0)
    assert y_map.scale == pytest.approx(height / 40, rel=0.03)

    # Shortest edge to 64 / 0.875 = 73 px, then a centred 64 x 64 crop.
    crop = ConvNextImageProcessorPil(size={"shortest_edge": IMAGE_SIZE}, crop_pct=0.875)
    x_map, y_map = probe_geometry(lambda images: crop(images=images, return_tensors="pt")["pixel_values"],
                                  width, height)
    scale = min(width, height) / 73
    resized_width = round(width / scale)
    for j in (16, 32, 48):
        expected = (j + (resized_width - 64) // 2 + 0.5) * scale - 0.5
        assert x_map.scale * j + x_map.offset == pytest.approx(expected, abs=1.5 * scale)


def test_saliency_covers_the_slice_and_is_zero_where_the_crop_cut(predictors):
    # The tiny models' processor resizes the short side to 73 px and crops the centre 64 x 64:
    # on a 120 x 80 slice the model sees x from about 24 to 96 only.
    prediction = predictors["resnet"].predict(_noise_slice(120, 80))
    saliency = prediction.saliency
    assert saliency.shape == (80, 120) and saliency.dtype == np.float32
    assert np.isfinite(saliency).all() and saliency.min() >= 0 and saliency.max() == pytest.approx(1.0)
    assert saliency[:, :20].max() == 0 and saliency[:, 100:].max() == 0
    assert saliency[:, 30:90].max() == pytest.approx(1.0)
    assert prediction.heatmap.size == (120, 80)


@pytest.mark.parametrize("arch", ["resnet", "convnext", "mobilenet_v2"])
def test_every_method_gives_a_finite_map_in_unit_range(predictors, arch):
    images = [Image.open(EXAMPLES[0]), _noise_slice(90, 70, seed=1)]
    results = predictors[arch].saliency_by_method(images, all_methods(), batch_size=2)
    assert len(results) == 2
    for image, maps in zip(images, results):
        assert set(maps) == set(all_methods())
        for name, saliency in maps.items():
            assert saliency.shape == (image.height, image.width) and saliency.dtype == np.float32, name
            assert np.isfinite(saliency).all() and saliency.min() >= 0, name
            assert saliency.max() == pytest.approx(1.0) or saliency.max() == 0, name


def test_gradcam_equals_cam_for_a_linear_head(predictors):
    """With global average pooling and a linear head (ResNet), Grad-CAM reduces to CAM (Zhou et
    al., 2016): ReLU(sum_k w_ck A_k) up to a positive factor; HiResCAM then equals Grad-CAM, since
    the gradient is the same at every position. Checks the gradient plumbing."""
    predictor = predictors["resnet"]
    pixel_values = predictor._pixel_values([Image.open(EXAMPLES[0])])
    run = lambda pv: predictor._run(pv, hidden_states=True)  # noqa: E731
    logits, _, maps = saliency_maps(run, pixel_values, ["gradcam@final", "hirescam@final"])
    with torch.no_grad():
        _, _, feature_map, _ = predictor._run(pixel_values)
        weights = predictor.model.classifier[-1].weight[int(logits[0].argmax())]
        expected = torch.relu((weights[:, None, None] * feature_map[0]).sum(dim=0))
    expected = torch.nn.functional.interpolate(expected[None, None], size=pixel_values.shape[-2:],
                                               mode="bilinear", align_corners=False)[0, 0]
    assert expected.max() > 0
    torch.testing.assert_close(maps["gradcam@final"][0], expected / expected.max(), atol=1e-4, rtol=1e-3)
    torch.testing.assert_close(maps["hirescam@final"][0], maps["gradcam@final"][0], atol=1e-4, rtol=1e-3)


@pytest.mark.parametrize("arch", ["resnet", "mobilenet_v2"])
def test_final_layer_maps_without_a_backward_pass_equal_autograds(predictors, arch):
    """For a head that is linear on the final map's spatial mean, the gradient there is the head's
    weight row over h * w everywhere: every final-layer method and smoothing gives autograd's map."""
    predictor = predictors[arch]
    head_weights = predictor._linear_head.weight.detach()
    pixel_values = predictor._pixel_values([Image.open(path) for path in EXAMPLES[:2]])
    run = lambda pv: predictor._run(pv, hidden_states=True)  # noqa: E731
    methods = [m for m in all_methods() if m.split("@")[1].startswith("final")]
    logits, pooled, by_autograd = saliency_maps(run, pixel_values, methods)
    logits_known, pooled_known, known = saliency_maps(run, pixel_values, methods, head_weights)
    torch.testing.assert_close(logits_known, logits)
    torch.testing.assert_close(pooled_known, pooled)
    assert set(known) == set(methods) and all(known[m].amax(dim=(1, 2)).min() > 0 for m in methods)  # none blank
    for method in methods:
        torch.testing.assert_close(known[method], by_autograd[method], atol=1e-4, rtol=1e-3, msg=method)


def test_a_head_that_is_not_linear_on_the_mean_keeps_autograd(predictors):
    # ConvNeXt normalises the pooled mean before its linear layer; ResNet and MobileNetV2 do not.
    assert predictors["convnext"]._linear_head is None
    assert predictors["resnet"]._linear_head is not None and predictors["mobilenet_v2"]._linear_head is not None
    # A method that reads the stride-16 stage still needs autograd, head weights or not.
    predictor = predictors["resnet"]
    pixel_values = predictor._pixel_values([Image.open(EXAMPLES[0])])
    run = lambda pv: predictor._run(pv, hidden_states=True)  # noqa: E731
    both = ["gradcam@fused", "layercam@final"]
    _, _, plain = saliency_maps(run, pixel_values, both)
    _, _, given = saliency_maps(run, pixel_values, both, predictor._linear_head.weight.detach())
    for method in both:
        torch.testing.assert_close(given[method], plain[method])


def test_smoothing_copies_come_back_onto_the_original_frame():
    y, x = torch.meshgrid(torch.arange(48.0), torch.arange(64.0), indexing="ij")
    blob = torch.exp(-((x - 20) ** 2 + (y - 30) ** 2) / 50)[None, None]  # off-centre, asymmetric
    copies = _copies("tta", 64)
    assert len(copies) == 10 and copies[:2] == _copies("flip", 64)
    moved = augment(blob, copies)[:, 0]  # each copy of the "image" as the model would see it
    assert not torch.allclose(moved[1], blob[0, 0])  # the mirror really moved it
    back = _undo(moved[None], copies)[0]
    for restored in back:  # equal away from the edges the shifts replicated
        torch.testing.assert_close(restored[4:-4, 4:-4], blob[0, 0, 4:-4, 4:-4])


def test_multi_scale_copies_come_back_onto_the_original_frame():
    y, x = torch.meshgrid(torch.arange(48.0), torch.arange(64.0), indexing="ij")
    blob = torch.exp(-((x - 20) ** 2 + (y - 30) ** 2) / 50)[None, None]
    copies = _copies("ms", 64)
    for scale in dict.fromkeys(c[0] for c in copies):
        group = [c for c in copies if c[0] == scale]
        moved = augment(blob, group)[:, 0]
        assert moved.shape[-2:] == (round(48 * scale), round(64 * scale))  # the model sees a larger input
        back = _undo(moved[None], group, size=(48, 64))[0]
        for restored in back:
            torch.testing.assert_close(restored, blob[0, 0], atol=0.02, rtol=0)


def test_half_max_keeps_the_peak_and_drops_the_faint_rest():
    maps = torch.tensor([[[0.2, 0.5, 1.0], [0.75, 0.0, 0.4]]])
    shown = half_max(maps)
    torch.testing.assert_close(shown, torch.tensor([[[0.0, 0.0, 1.0], [0.5, 0.0, 0.0]]]))
    assert shown.flatten().argmax() == maps.flatten().argmax()


def test_method_names():
    assert str(SaliencyMethod.parse("LayerCAM@stride16+tta")) == "layercam@stride16+tta"
    assert str(SaliencyMethod.parse("layercam@final+ms+halfmax")) == "layercam@final+ms+halfmax"
    assert SaliencyMethod.parse("gradcam@final+halfmax").smoothing == "none"
    drawn = replace(SaliencyMethod.parse(DEFAULT_METHOD), halfmax=False)  # +halfmax shows a drawn map
    assert drawn in [SaliencyMethod.parse(m) for m in all_methods()]
    for bad in ("gradcam", "scorecam@final", "gradcam@stage9", "gradcam@final+blur", "gradcam@final+halfmax+ms"):
        with pytest.raises(ValueError, match="Unknown saliency method"):
            SaliencyMethod.parse(bad)
    with pytest.raises(ValueError, match="Unknown saliency method"):
        Predictor(*build_tiny_model("resnet"), saliency_method="guided-backprop")


# --- the map points at what decides the class ---------------------------------------------------


def _square_slice(rng, with_square: bool, size: int = 64, side: int = 10):
    image = rng.normal(60, 25, (size, size))
    box = None
    if with_square:  # kept inside the centre crop the processor makes
        x, y = rng.integers(10, size - 10 - side, 2)
        image[y : y + side, x : x + side] = 230
        box = (int(x), int(y), side)
    return Image.fromarray(np.clip(image, 0, 255).astype(np.uint8), mode="L"), box


@pytest.fixture(scope="module")
def square_model():
    """A tiny ResNet trained for 40 steps: 'meningioma' (label 1) when a bright square is anywhere
    in the noise, 'glioma' (0) when there is none."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small runs faster on one thread than on a busy two
    try:
        torch.manual_seed(0)
        rng = np.random.default_rng(0)
        model, processor = build_tiny_model("resnet")
        images = [_square_slice(rng, i % 2 == 1)[0].convert("RGB") for i in range(128)]
        pixel_values = processor(images=images, return_tensors="pt")["pixel_values"]
        labels = torch.arange(128) % 2
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        model.train()
        for _ in range(40):
            batch = torch.randint(0, 128, (32,))
            loss = torch.nn.functional.cross_entropy(model(pixel_values=pixel_values[batch]).logits, labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return Predictor(model.eval(), processor), rng
    finally:
        torch.set_num_threads(threads)


def test_map_peaks_on_the_square_that_decides_the_class(square_model):
    predictor, rng = square_model
    tests = [_square_slice(rng, True) for _ in range(10)]
    predictions = predictor.predict_batch([image for image, _ in tests], heatmap=True)
    assert all(p.label == "meningioma" for p in predictions)  # it learned the rule
    by_method = predictor.saliency_by_method([image for image, _ in tests], all_methods())

    def hit_rate(maps) -> float:
        hits = 0
        for saliency, (_, (x, y, side)) in zip(maps, tests):
            peak_y, peak_x = np.unravel_index(saliency.argmax(), saliency.shape)
            hits += (x - 4 <= peak_x < x + side + 4) and (y - 4 <= peak_y < y + side + 4)
        return hits / len(tests)

    assert hit_rate([p.saliency for p in predictions]) >= 0.9
    for method in all_methods():
        assert hit_rate([maps[method] for maps in by_method]) >= 0.7, method


def test_a_model_without_spatial_maps_answers_without_a_map(tmp_path):
    # A ViT has no spatial feature map and cannot take the enlarged inputs of `+ms`: no map, no error.
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessorPil

    config = ViTConfig(image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=32, num_labels=4, id2label=dict(enumerate(CLASS_NAMES)),
                       label2id={name: i for i, name in enumerate(CLASS_NAMES)})
    predictor = Predictor(ViTForImageClassification(config).eval(),
                          ViTImageProcessorPil(size={"height": 32, "width": 32}))
    assert SaliencyMethod.parse(predictor.saliency_method).smoothing == "ms"
    prediction = predictor.predict(_noise_slice(48, 40), heatmap=True)
    assert prediction.label in CLASS_NAMES and prediction.saliency is None
