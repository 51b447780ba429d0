"""Predictor on tiny models: probabilities, saliency and heat map, checks, verdicts, loading errors, CLI."""

import argparse
import csv
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from helpers_models import IMAGE_SIZE, build_tiny_model, save_tiny_model
from PIL import Image

from brain_tumor.cli.predict import add_predict_parser
from brain_tumor.fit_checks import fit_checks
from brain_tumor.inference import ModelLoadError, Prediction, Predictor, overlay_heatmap, verdict_text
from brain_tumor.saliency import DEFAULT_METHOD
from brain_tumor.labels import CLASS_NAMES

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.jpg"))


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {arch: save_tiny_model(root / arch, arch) for arch in ("resnet", "convnext", "mobilenet_v2")}


@pytest.fixture(scope="module")
def predictor(model_dirs):
    return Predictor.from_pretrained(model_dirs["resnet"])


@pytest.mark.parametrize("arch", ["resnet", "convnext", "mobilenet_v2"])
def test_predict_probabilities_and_heatmap(model_dirs, arch):
    predictor = Predictor.from_pretrained(model_dirs[arch])
    assert not predictor.model.training
    prediction = predictor.predict(EXAMPLES[0])
    assert isinstance(prediction, Prediction)
    assert list(prediction.probabilities) == list(CLASS_NAMES)  # names from config.id2label
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert prediction.label == max(prediction.probabilities, key=prediction.probabilities.get)
    # The map and its picture lie on the decoded slice (224 x 224), not on the 64 x 64 model input.
    slice_size = prediction.scan.image.size
    assert slice_size != (IMAGE_SIZE, IMAGE_SIZE)
    assert prediction.heatmap.mode == "RGB" and prediction.heatmap.size == slice_size
    assert prediction.saliency.shape == slice_size[::-1] and prediction.saliency.dtype == np.float32
    assert prediction.saliency_method == DEFAULT_METHOD
    assert prediction.verdict and prediction.scan.format == "JPEG"
    # No hook of ours stays on the model (transformers' own `output_hidden_states` recorders on
    # inner stages, inactive unless asked for, are its business).
    assert not predictor.model._forward_hooks and not predictor.model.base_model._forward_hooks


@pytest.mark.parametrize("arch", ["resnet", "convnext", "mobilenet_v2"])
def test_the_cpu_preparation_gives_the_same_answers_and_maps(tmp_path, arch):
    import torch

    from brain_tumor.saliency import all_methods

    model, processor = build_tiny_model(arch)
    generator = torch.Generator().manual_seed(0)
    for norm in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        # Trained-looking statistics, so that folding them into the convolutions changes the weights.
        for tensor, low, high in ((norm.running_mean, -0.5, 0.5), (norm.running_var, 0.5, 2.0),
                                  (norm.weight.data, 0.5, 1.5), (norm.bias.data, -0.3, 0.3)):
            tensor.copy_(low + (high - low) * torch.rand(tensor.shape, generator=generator))
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)

    prepared = Predictor.from_pretrained(str(tmp_path), device="cpu")
    as_saved = Predictor.from_pretrained(str(tmp_path), device="cpu", prepare_for_cpu=False)
    convolutions = [w for w in prepared.model.parameters() if w.dim() == 4]
    assert convolutions and all(w.is_contiguous(memory_format=torch.channels_last) for w in convolutions)
    saved_has_batch_norm = any(isinstance(m, torch.nn.BatchNorm2d) for m in as_saved.model.modules())
    assert saved_has_batch_norm == (arch != "convnext")  # ConvNeXt normalises with layer norm, which stays
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in prepared.model.modules())
    methods = all_methods()
    fast = prepared.predict(EXAMPLES[0]), prepared.saliency_by_method([EXAMPLES[0]], methods)[0]
    plain = as_saved.predict(EXAMPLES[0]), as_saved.saliency_by_method([EXAMPLES[0]], methods)[0]
    for label, p in plain[0].probabilities.items():
        assert fast[0].probabilities[label] == pytest.approx(p, abs=1e-5)
    for method in methods:
        np.testing.assert_allclose(fast[1][method], plain[1][method], atol=1e-3, err_msg=method)


@pytest.mark.parametrize("arch", ["resnet", "mobilenet_v2"])
def test_a_compiled_predictor_answers_as_the_eager_one_and_keeps_its_heat_map(model_dirs, arch):
    compiled = Predictor.from_pretrained(model_dirs[arch], device="cpu", compile=True)
    eager = Predictor.from_pretrained(model_dirs[arch], device="cpu")
    assert compiled.compiled and compiled.compile_seconds > 0 and not eager.compiled
    # Answers without a heat map (the app's API, the CLI) come from the compiled backbone ...
    for fast, plain in zip(compiled.predict_batch(EXAMPLES, batch_size=1), eager.predict_batch(EXAMPLES, batch_size=1)):
        assert fast.label == plain.label
        for label, p in plain.probabilities.items():
            assert fast.probabilities[label] == pytest.approx(p, abs=1e-5)
    # ... and the heat map from the eager model, the same as without compiling.
    fast, plain = compiled.predict(EXAMPLES[0]), eager.predict(EXAMPLES[0])
    np.testing.assert_allclose(fast.saliency, plain.saliency, atol=1e-5)
    assert fast.probabilities == pytest.approx(plain.probabilities, abs=1e-5)


@pytest.mark.parametrize("when", ["on the first call", "at once"])
def test_a_predictor_whose_compile_fails_serves_eager_and_says_why(model_dirs, monkeypatch, caplog, when):
    import brain_tumor.inference as inference

    # What inductor raises on the first call has many types, and torch.compile itself refuses some
    # Python versions; a RuntimeError stands for any of them.
    def no_compiler(module):
        def call(**inputs):
            raise RuntimeError("C++ compiler not found")
        if when == "at once":
            call()
        return call

    monkeypatch.setattr(inference, "compiled_for_inference", no_compiler)
    with caplog.at_level("WARNING", logger="brain_tumor.inference"):
        predictor = Predictor.from_pretrained(model_dirs["resnet"], device="cpu", compile=True)
    assert not predictor.compiled and predictor.compile_seconds is None
    assert "compiling it failed (RuntimeError: C++ compiler not found)" in caplog.text
    assert sum(predictor.predict(EXAMPLES[0], heatmap=False).probabilities.values()) == pytest.approx(1.0, abs=1e-5)


def test_batch_norms_fold_only_in_eval_mode_and_only_into_plain_convolutions():
    import torch

    from brain_tumor.modeling import fold_batch_norms

    model, _ = build_tiny_model("resnet")
    with pytest.raises(ValueError, match="eval mode"):
        fold_batch_norms(model.train())

    class StandardisedConv2d(torch.nn.Conv2d):  # a forward of its own, as BiT's weight standardisation
        def forward(self, x):
            return super().forward(x)

    layer = model.eval().resnet.embedder.embedder
    layer.convolution = StandardisedConv2d(3, layer.convolution.out_channels, 3)
    fold_batch_norms(model)
    assert isinstance(layer.normalization, torch.nn.BatchNorm2d)
    assert not isinstance(model.resnet.encoder.stages[0].layers[0].layer[0].normalization, torch.nn.BatchNorm2d)


def test_labels_follow_config_not_a_fixed_list(tmp_path):
    model, processor = build_tiny_model("resnet")
    model.config.id2label = {0: "pituitary", 1: "notumor", 2: "meningioma", 3: "glioma"}
    model.config.label2id = {v: k for k, v in model.config.id2label.items()}
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    prediction = Predictor.from_pretrained(str(tmp_path)).predict(EXAMPLES[0], heatmap=False)
    assert list(prediction.probabilities) == ["pituitary", "notumor", "meningioma", "glioma"]


def test_predict_matches_pipeline(model_dirs, predictor):
    from transformers import pipeline

    classifier = pipeline("image-classification", model=model_dirs["resnet"], top_k=None)
    image = Image.open(EXAMPLES[1]).convert("RGB")
    expected = {row["label"]: row["score"] for row in classifier(image)}
    got = predictor.predict(image, heatmap=False).probabilities
    for label, p in expected.items():
        assert got[label] == pytest.approx(p, abs=1e-5)


def test_accepts_path_bytes_pil_and_batch_agrees(predictor):
    path = EXAMPLES[2]
    a = predictor.predict(path, heatmap=False).probabilities
    b = predictor.predict(path.read_bytes(), heatmap=False).probabilities
    c = predictor.predict(Image.open(path)).probabilities  # with heat map: same numbers
    batch = predictor.predict_batch([path, EXAMPLES[0], path], batch_size=2)
    for other in (b, c, batch[0].probabilities, batch[2].probabilities):
        for label in a:
            assert other[label] == pytest.approx(a[label], abs=1e-5)
    assert all(p.heatmap is None for p in batch)


def test_overlay_draws_evidence_where_the_map_is():
    saliency = np.zeros((64, 80), dtype=np.float32)
    saliency[:32, :40] = 1.0  # evidence only in the top-left quadrant
    overlay = np.asarray(overlay_heatmap(Image.new("L", (80, 64), 0), saliency)).astype(float)
    assert overlay.shape == (64, 80, 3)
    assert overlay[:24, :30].sum() > 10 * overlay[40:, 50:].sum()
    with pytest.raises(ValueError, match="must match"):
        overlay_heatmap(Image.new("L", (64, 64), 0), saliency)


def test_gradcam_on_frozen_model(model_dirs):
    predictor = Predictor.from_pretrained(model_dirs["convnext"])
    for p in predictor.model.parameters():
        p.requires_grad_(False)
    assert predictor.predict(EXAMPLES[0]).heatmap is not None
    assert not any(p.requires_grad for p in predictor.model.parameters())  # left as it was


def test_concurrent_predictions_match_sequential(predictor):
    paths = EXAMPLES * 4
    sequential = [predictor.predict(p) for p in paths]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(predictor.predict, paths))
    for s, p in zip(sequential, parallel):  # each request sees its own activations and gradients
        for label in s.probabilities:
            assert p.probabilities[label] == pytest.approx(s.probabilities[label], abs=1e-5)
        np.testing.assert_allclose(p.saliency, s.saliency, atol=1e-5)


# --- checks wired into predictions ------------------------------------------------------------


def test_blank_image_is_not_mri(predictor):
    prediction = predictor.predict(Image.new("L", (128, 128), 0))
    assert prediction.not_mri and "does not look like a brain MRI slice" in prediction.verdict


def test_colour_photo_is_not_mri(predictor):
    from sklearn.datasets import load_sample_image

    prediction = predictor.predict(Image.fromarray(load_sample_image("china.jpg")), heatmap=False)
    assert prediction.not_mri and any("colour" in r for r in prediction.not_mri_reasons)


def test_fit_checks_json_roundtrip_into_config(tmp_path):
    model, processor = build_tiny_model("resnet")
    images = [Image.open(p) for p in EXAMPLES] * 6
    labels = [p.name.split("_")[0] for p in EXAMPLES] * 6
    fitted = fit_checks(model, processor, images, images[:12], labels[:12], train_labels=labels)
    assert set(fitted) >= {"image_statistics", "uncertainty", "feature_distance", "version"}
    text = json.dumps(fitted)
    model.config.brain_tumor_checks = json.loads(text)
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    assert "brain_tumor_checks" in json.loads((tmp_path / "config.json").read_text())
    predictor = Predictor.from_pretrained(str(tmp_path))
    assert predictor.checks_fitted
    assert predictor.checks["uncertainty"] == fitted["uncertainty"]
    predictor.predict(EXAMPLES[0])  # the fitted feature detector runs


def test_defaults_used_without_fitted_checks(predictor):
    assert not predictor.checks_fitted
    assert predictor.checks["feature_distance"] is None
    assert predictor.checks["uncertainty"] == {"min_top_probability": 0.6, "min_margin": 0.2}


def test_verdict_sentences():
    confident = verdict_text("glioma", 0.91, [], [])
    assert confident.startswith("Glioma (91%): a tumour growing from the brain's glial")
    assert verdict_text("notumor", 0.8, [], []).startswith("No tumour (80%): no tumour visible")
    uncertain = verdict_text("meningioma", 0.45, [], ["it leads glioma by only 5%"])
    assert uncertain.startswith("Uncertain: the best guess is meningioma (45%)")
    ood = verdict_text("glioma", 0.9, ["it is in colour"], [])
    assert ood.startswith("This does not look like a brain MRI slice: it is in colour")
    assert verdict_text("other_class", 0.7, [], []) == "Other class (70%)."


def test_a_tumour_of_uncertain_type_is_called_a_tumour_first():
    # Br35H-like: the model is sure of a tumour, not of its type.
    split = {"glioma": 0.50, "meningioma": 0.44, "notumor": 0.02, "pituitary": 0.04}
    verdict = verdict_text("glioma", 0.50, [], ["it leads meningioma by only 6%"], split)
    assert verdict.startswith("Tumour, type uncertain: the three tumour types together get 98%; the best guess "
                              "of the type is glioma (50%)")
    # Not when a tumour itself is in doubt, nor for a model with other classes, nor when not uncertain.
    doubtful = {"glioma": 0.45, "meningioma": 0.15, "notumor": 0.38, "pituitary": 0.02}
    assert verdict_text("glioma", 0.45, [], ["it leads notumor by only 7%"], doubtful).startswith("Uncertain:")
    other = {"a": 0.5, "b": 0.5}
    assert verdict_text("a", 0.5, [], ["it leads b by only 0%"], other).startswith("Uncertain:")
    assert verdict_text("glioma", 0.95, [], [], {**split, "glioma": 0.95}).startswith("Glioma (95%)")


def test_no_tumour_outweighed_by_the_three_tumour_types_together_is_called_more_likely_a_tumour():
    spread = {"glioma": 0.25, "meningioma": 0.20, "notumor": 0.40, "pituitary": 0.15}
    verdict = verdict_text("notumor", 0.40, [], ["its top probability is only 40%"], spread)
    assert verdict.startswith("More likely a tumour than not: the three tumour types together get 60%, against "
                              "40% for no tumour")
    leading = {"glioma": 0.20, "meningioma": 0.15, "notumor": 0.55, "pituitary": 0.10}
    assert verdict_text("notumor", 0.55, [], ["its top probability is only 55%"], leading).startswith("Uncertain:")
    # The not-an-MRI verdict comes first.
    assert verdict_text("notumor", 0.40, ["it is in colour"], [], spread).startswith("This does not look like")


def test_predictor_flags_a_no_tumour_answer_above_the_fitted_tumour_level():
    import torch

    model, processor = build_tiny_model("resnet")
    with torch.no_grad():  # a model sure of "no tumour", so the answer is known
        model.classifier[-1].bias[CLASS_NAMES.index("notumor")] += 20.0
    level = {"threshold": 0.0, "validation_specificity": 0.95, "n_validation_no_tumour": 10}
    flagged = Predictor(model, processor, checks={"tumour_threshold": level}).predict(EXAMPLES[0], heatmap=False)
    assert flagged.label == "notumor" and flagged.uncertain
    assert flagged.uncertain_reasons[-1].startswith("a tumour is not ruled out: the three tumour types together get")
    calm = Predictor(model, processor, checks={"tumour_threshold": {**level, "threshold": 0.5}})
    assert not any("not ruled out" in r for r in calm.predict(EXAMPLES[0], heatmap=False).uncertain_reasons)


# --- loading errors ---------------------------------------------------------------------------


def test_offline_hub_id_gives_clear_error():
    with pytest.raises(ModelLoadError, match="Hugging Face Hub.*offline"):
        Predictor.from_pretrained("someone/no-such-brain-model")


def test_missing_folder_gives_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="No model folder"):
        Predictor.from_pretrained(str(tmp_path / "nothing-here"))


def test_folder_without_model_gives_clear_error(tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(ModelLoadError, match="not a usable model folder"):
        Predictor.from_pretrained(str(tmp_path))


# --- CLI ---------------------------------------------------------------------------------------


def _run_cli(argv):
    parser = argparse.ArgumentParser()
    add_predict_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.handler(args)


def test_cli_csv_and_json(model_dirs, tmp_path, capsys):
    folder = tmp_path / "scans"
    (folder / "nested").mkdir(parents=True)
    for path in EXAMPLES[:2]:
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "nested" / "third.png").write_bytes((ROOT / "examples").joinpath(EXAMPLES[2].name).read_bytes())
    (folder / "broken.jpg").write_bytes(b"not an image at all")
    (folder / "README.md").write_text("ignored: not a scan suffix")

    out_csv = tmp_path / "out.csv"
    status = _run_cli(["predict", str(folder), "--model", model_dirs["resnet"], "--output", str(out_csv)])
    assert status == 1  # one file could not be read
    rows = list(csv.DictReader(out_csv.open()))
    expected_order = sorted(["broken.jpg", EXAMPLES[0].name, EXAMPLES[1].name]) + ["third.png"]
    assert [Path(r["path"]).name for r in rows] == expected_order
    good = [r for r in rows if not r["error"]]
    assert len(good) == 3 and all(r["label"] in CLASS_NAMES for r in good)
    assert all(abs(sum(float(r[f"p_{c}"]) for c in CLASS_NAMES) - 1) < 1e-4 for r in good)
    assert "contains text" in next(r for r in rows if r["error"])["error"]
    assert "predict" in capsys.readouterr().err  # the tqdm bar and the summary go to stderr

    out_json = tmp_path / "out.json"
    assert _run_cli(["predict", str(EXAMPLES[0]), "--model", model_dirs["resnet"], "--output", str(out_json)]) == 0
    records = json.loads(out_json.read_text())
    assert records[0]["probabilities"].keys() == set(CLASS_NAMES)


def test_cli_compiled_gives_the_same_rows(model_dirs, tmp_path):
    rows = {}
    for flags in ([], ["--compile"]):
        out = tmp_path / f"out{len(flags)}.csv"
        assert _run_cli(["predict", *map(str, EXAMPLES), "--model", model_dirs["resnet"], "--batch-size", "2",
                         "--output", str(out), *flags]) == 0
        rows[bool(flags)] = list(csv.DictReader(out.open()))
    assert [r["label"] for r in rows[True]] == [r["label"] for r in rows[False]]
    for fast, plain in zip(rows[True], rows[False]):
        assert all(float(fast[f"p_{c}"]) == pytest.approx(float(plain[f"p_{c}"]), abs=1e-5) for c in CLASS_NAMES)


def test_cli_saliency_dir_writes_one_map_per_file(model_dirs, tmp_path):
    folder = tmp_path / "scans"
    (folder / "nested").mkdir(parents=True)
    (folder / "a.jpg").write_bytes(EXAMPLES[0].read_bytes())
    (folder / "nested" / "a.jpg").write_bytes(EXAMPLES[1].read_bytes())  # same name, other folder
    (folder / "broken.jpg").write_bytes(b"not an image at all")
    out_csv, maps = tmp_path / "out.csv", tmp_path / "maps"
    status = _run_cli(["predict", str(folder), "--model", model_dirs["resnet"], "--output", str(out_csv),
                       "--saliency-dir", str(maps)])
    assert status == 1
    rows = {Path(r["path"]).relative_to(folder).as_posix(): r for r in csv.DictReader(out_csv.open())}
    assert rows["broken.jpg"]["saliency_file"] == ""
    for name in ("a.jpg", "nested/a.jpg"):
        saved = np.load(rows[name]["saliency_file"])
        assert Path(rows[name]["saliency_file"]) == maps / f"{name}.npy"
        assert saved.shape == Image.open(folder / name).size[::-1] and saved.dtype == np.float32
        assert 0 <= saved.min() and saved.max() <= 1
    pngs = tmp_path / "pngs"
    assert _run_cli(["predict", str(folder / "a.jpg"), "--model", model_dirs["resnet"], "--output",
                     str(tmp_path / "o.json"), "--saliency-dir", str(pngs), "--saliency-format", "png"]) == 0
    assert Image.open(pngs / "a.jpg.png").size == Image.open(folder / "a.jpg").size


def test_cli_rejects_bad_output_and_model(model_dirs, tmp_path, capsys):
    bad_output = str(tmp_path / "x.txt")
    assert _run_cli(["predict", str(EXAMPLES[0]), "--model", model_dirs["resnet"], "--output", bad_output]) == 2
    assert _run_cli(["predict", str(EXAMPLES[0]), "--model", str(tmp_path / "none")]) == 2
    assert "No model folder" in capsys.readouterr().err
