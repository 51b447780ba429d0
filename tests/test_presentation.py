"""The /analyse record and the heat-map caption."""

from helpers_models import save_tiny_model
from PIL import Image

from brain_tumor.inference import Predictor
from brain_tumor.presentation import api_record, heatmap_caption

FIGURES = {"method": "Grad-CAM", "split": "clean_test", "pointing_game": 0.29, "pointing_game_strict": 0.13,
           "mass_in_mask": 0.05, "centre_baseline_pointing_game": 0.47}


def test_caption_quotes_the_benchmark():
    caption = heatmap_caption("glioma", FIGURES)
    assert "Grad-CAM" in caption and "clean test split" in caption and "not a tumour outline" in caption
    assert "29%" in caption and "13%" in caption and "47%" in caption and "5%" in caption


def test_caption_per_class_table_uses_overall():
    figures = {**FIGURES, "pointing_game": {"overall": 0.85, "glioma": 0.8}}
    assert "85%" in heatmap_caption("meningioma", figures)


def test_caption_without_figures_says_unchecked():
    for figures in (None, {}, {**FIGURES, "mass_in_mask": "high"}, {**FIGURES, "pointing_game": 1.7}):
        assert "has not been checked against tumour masks" in heatmap_caption("pituitary", figures)


def test_caption_for_no_tumour_says_it_is_not_a_tumour():
    for figures in (FIGURES, None):
        caption = heatmap_caption("notumor", figures)
        assert "what drove the answer" in caption and "does not show a tumour" in caption and "29%" not in caption


def test_api_record_is_json_ready(tmp_path):
    predictor = Predictor.from_pretrained(save_tiny_model(tmp_path / "m"))
    image = Image.new("RGB", (64, 64), (220, 30, 30))  # bright red: not an MRI
    record = api_record(predictor.predict(image, heatmap=False))
    assert record["not_mri"] is True and isinstance(record["reasons"], list)
    assert record["reasons"][0] == predictor.predict(image, heatmap=False).not_mri_reasons[0]
    assert record["slice_index"] == 0 and record["num_slices"] == 1
    assert set(record["probabilities"]) == set(predictor.labels)
