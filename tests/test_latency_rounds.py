"""bench/latency_rounds.py: alternating order, the per-round summary, and one real run on tiny models."""

import json

import numpy as np

import pytest
import torch
from helpers_models import save_tiny_model
from scipy.stats import binomtest

import bench.common
from bench.latency_rounds import main, round_order, summarize
from bench.predictors import AppRequestPredictor, PipelinePredictor


def test_the_order_of_the_models_reverses_every_other_round():
    assert [round_order(["a", "b", "c"], i) for i in range(3)] == [["a", "b", "c"], ["c", "b", "a"], ["a", "b", "c"]]


def test_each_model_is_judged_round_by_round_against_the_first():
    summary = summarize({"ref": [10.0, 12.0, 11.0, 30.0, 10.0], "cand": [9.0, 12.0, 12.0, 9.5, 9.0]})
    assert summary["reference"] == "ref" and "rounds_faster" not in summary["models"]["ref"]
    assert summary["models"]["ref"]["median_p50"] == 11.0 and summary["models"]["cand"]["median_p50"] == 9.5
    candidate = summary["models"]["cand"]
    # Round differences -1, 0 (a tie: no sign), +1, -20.5, -1.
    assert (candidate["rounds_faster"], candidate["rounds_slower"]) == (3, 1)
    assert candidate["median_difference_ms"] == -1.0
    assert candidate["sign_test_p"] == pytest.approx(binomtest(3, 4, 0.5).pvalue)
    assert summarize({"a": [5.0], "b": [5.0]})["models"]["b"]["sign_test_p"] == 1.0  # only ties: no evidence


def test_a_run_on_two_tiny_models_writes_every_round(tmp_path, kaggle_folder, monkeypatch):
    monkeypatch.setattr(bench.common, "RESULTS_DIR", tmp_path / "results")
    first = save_tiny_model(tmp_path / "first", seed=0)
    second = save_tiny_model(tmp_path / "second", arch="mobilenet_v2", seed=1)
    main(["--model", first, "--model", second, "--dataset", str(kaggle_folder), "--rounds", "3",
          "--calls", "4", "--warmup_calls", "1", "--output_name", "rounds"])
    payload = json.loads((tmp_path / "results" / "rounds.json").read_text())
    assert payload["reference"] == "first" and set(payload["models"]) == {"first", "second"}
    assert all(len(entry["p50_per_round"]) == 3 and entry["median_p50"] > 0 for entry in payload["models"].values())
    second_entry = payload["models"]["second"]
    assert second_entry["rounds_faster"] + second_entry["rounds_slower"] <= 3
    assert "Each round's p50" in (tmp_path / "results" / "rounds.md").read_text()


@pytest.mark.parametrize("full_request", [False, True])
def test_one_model_is_timed_against_itself_as_the_app_holds_it(tmp_path, kaggle_folder, monkeypatch, full_request):
    monkeypatch.setattr(bench.common, "RESULTS_DIR", tmp_path / "results")
    folder = save_tiny_model(tmp_path / "tiny", arch="mobilenet_v2", seed=0)
    main(["--model", folder, "--channels_last_too", "--folded_too", "--dataset", str(kaggle_folder), "--rounds", "2",
          "--calls", "2", "--warmup_calls", "1", "--output_name", "layouts"]
         + (["--full_request"] if full_request else []))
    payload = json.loads((tmp_path / "results" / "layouts.json").read_text())
    folded = "tiny (batch norm folded, channels last)"
    assert payload["reference"] == "tiny" and list(payload["models"]) == ["tiny", "tiny (channels last)", folded]
    assert len(payload["models"][folded]["p50_per_round"]) == 2
    assert ("heat map" in (tmp_path / "results" / "layouts.md").read_text()) == full_request
    kind = AppRequestPredictor if full_request else PipelinePredictor
    for channels_last, fold in [(False, False), (True, False), (True, True)]:
        predictor = kind(folder, "tiny", channels_last=channels_last, fold_batch_norm=fold)
        model = predictor.predictor.model if full_request else predictor.pipe.model
        convolutions = [w for w in model.parameters() if w.dim() == 4]
        layout = torch.channels_last if channels_last else torch.contiguous_format
        assert convolutions and all(w.is_contiguous(memory_format=layout) for w in convolutions)
        assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) != fold
        assert predictor.predict_one(str(next(kaggle_folder.rglob("*.jpg")))).sum() == pytest.approx(1.0, abs=1e-5)


def test_one_model_or_the_peer_is_refused(kaggle_folder):
    with pytest.raises(SystemExit, match="two or more"):
        main(["--model", "models/brain-tumor-mri-classifier", "--dataset", str(kaggle_folder)])
    with pytest.raises(SystemExit, match="--peer"):
        main(["--model", "a", "--model", "b", "--peer"])


@pytest.mark.parametrize("api_request", [False, True])
def test_a_model_is_timed_against_itself_compiled_with_the_same_answers(tmp_path, kaggle_folder, monkeypatch,
                                                                       api_request):
    monkeypatch.setattr(bench.common, "RESULTS_DIR", tmp_path / "results")
    folder = save_tiny_model(tmp_path / "tiny", arch="mobilenet_v2", seed=0)
    main(["--model", folder, "--compiled_too", "--dataset", str(kaggle_folder), "--rounds", "2", "--calls", "2",
          "--warmup_calls", "1", "--output_name", "compiled"] + (["--api_request"] if api_request else []))
    payload = json.loads((tmp_path / "results" / "compiled.json").read_text())
    compiled_name = "tiny (folded, channels last, compiled)" if api_request else "tiny (compiled)"
    assert list(payload["models"]) == ["tiny", compiled_name]
    assert len(payload["models"][compiled_name]["p50_per_round"]) == 2
    assert ("the app's API request" in (tmp_path / "results" / "compiled.md").read_text()) == api_request
    image = str(next(kaggle_folder.rglob("*.jpg")))
    if api_request:
        compiled, plain = (AppRequestPredictor(folder, "c", compile=True, heatmap=False),
                           AppRequestPredictor(folder, "p", heatmap=False))
        assert compiled.predictor.compiled
    else:
        compiled, plain = PipelinePredictor(folder, "c", compile=True), PipelinePredictor(folder, "p")
    np.testing.assert_allclose(compiled.predict_one(image), plain.predict_one(image), atol=1e-5)


def test_compiling_the_heat_map_request_or_timing_two_requests_is_refused(kaggle_folder):
    with pytest.raises(SystemExit, match="run eager"):
        main(["--model", "m", "--compiled_too", "--full_request", "--dataset", str(kaggle_folder)])
    with pytest.raises(SystemExit, match="not both"):
        main(["--model", "m", "--api_request", "--full_request", "--dataset", str(kaggle_folder)])
