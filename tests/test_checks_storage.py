"""Fitted checks in a model folder: small values in config.json, arrays in checks.safetensors."""

import json
from pathlib import Path

import numpy as np
import pytest
from helpers_models import save_tiny_model
from huggingface_hub.errors import LocalEntryNotFoundError
from transformers import AutoConfig

import brain_tumor
from brain_tumor.checks import (
    CHECKS_FILE,
    DEFAULT_CHECKS,
    fit_feature_distance,
    load_checks,
    resolve_checks,
    save_checks,
    storage,
)
from brain_tumor.labels import ANY_TUMOR_ID


@pytest.fixture(scope="module")
def fitted_checks():
    rng = np.random.default_rng(0)
    train = rng.normal(size=(200, 16)) + np.eye(4, 16)[np.arange(200) % 4] * 5
    distance = fit_feature_distance(train, np.arange(200) % 4, train[:50])
    return {**DEFAULT_CHECKS, "source": "fitted on test data", "feature_distance": distance}


@pytest.fixture()
def model_dir(tmp_path):
    return Path(save_tiny_model(tmp_path / "tiny"))


def test_save_then_load_gives_the_checks_back_exactly(model_dir, fitted_checks):
    before = json.loads((model_dir / "config.json").read_text())
    save_checks(fitted_checks, model_dir)
    after = json.loads((model_dir / "config.json").read_text())
    stored = after.pop("brain_tumor_checks")
    assert after == before  # nothing else in config.json changes
    assert "components" not in stored["feature_distance"] and stored["feature_distance"]["max_mahalanobis"] > 0
    assert (model_dir / CHECKS_FILE).is_file()
    assert load_checks(str(model_dir), AutoConfig.from_pretrained(model_dir)) == fitted_checks


def test_missing_arrays_file_turns_only_the_feature_distance_off(model_dir, fitted_checks, caplog):
    save_checks(fitted_checks, model_dir)
    (model_dir / CHECKS_FILE).unlink()
    loaded = load_checks(str(model_dir), AutoConfig.from_pretrained(model_dir))
    assert loaded["feature_distance"] is None and loaded["source"] == "fitted on test data"
    assert "feature-distance check is off" in caplog.text
    # config.json read on its own (no load_checks): the pointer alone does not count as fitted.
    assert resolve_checks(AutoConfig.from_pretrained(model_dir).brain_tumor_checks)["feature_distance"] is None


def test_older_folders_with_arrays_inline_in_config_still_load(tmp_path, fitted_checks):
    folder = save_tiny_model(tmp_path / "old", checks=fitted_checks)
    assert load_checks(folder, AutoConfig.from_pretrained(folder)) == fitted_checks
    unfitted = save_tiny_model(tmp_path / "none")
    assert load_checks(unfitted, AutoConfig.from_pretrained(unfitted)) is None


def test_refit_without_feature_distance_removes_stale_arrays(model_dir, fitted_checks):
    save_checks(fitted_checks, model_dir)
    save_checks({**fitted_checks, "feature_distance": None}, model_dir)
    assert not (model_dir / CHECKS_FILE).exists()
    assert load_checks(str(model_dir), AutoConfig.from_pretrained(model_dir))["feature_distance"] is None


def test_clear_errors_for_a_folder_without_config_and_for_checks_without_arrays(tmp_path, fitted_checks):
    with pytest.raises(FileNotFoundError, match="save_pretrained"):
        save_checks(fitted_checks, tmp_path)
    folder = save_tiny_model(tmp_path / "tiny")
    pointer_only = {**fitted_checks, "feature_distance": {"max_mahalanobis": 1.0}}
    with pytest.raises(ValueError, match="lacks its fitted arrays"):
        save_checks(pointer_only, folder)


def test_hub_id_reads_the_arrays_through_hf_hub_download(model_dir, fitted_checks, monkeypatch):
    save_checks(fitted_checks, model_dir)
    config = AutoConfig.from_pretrained(model_dir)
    calls = []

    def download(repo_id, filename):  # the Hub's network boundary; the cache serves this offline
        calls.append((repo_id, filename))
        return str(model_dir / filename)

    monkeypatch.setattr(storage, "hf_hub_download", download)
    assert load_checks("someone/brain-model", config) == fitted_checks
    assert calls == [("someone/brain-model", CHECKS_FILE)]

    def not_cached(repo_id, filename):
        raise LocalEntryNotFoundError("offline and not in the cache")

    monkeypatch.setattr(storage, "hf_hub_download", not_cached)
    assert load_checks("someone/brain-model", config)["feature_distance"] is None


def test_default_model_keeps_its_arrays_beside_a_small_config():
    folder = Path(brain_tumor.DEFAULT_MODEL)
    assert (folder / "config.json").stat().st_size < 10_000
    checks = load_checks(str(folder), AutoConfig.from_pretrained(folder))
    distance = checks["feature_distance"]
    k = len(distance["components"])
    assert np.shape(distance["components"])[1] == len(distance["centre"]) and 1 <= k <= 32
    assert np.shape(distance["precision"]) == (k, k)
    # One mean per class, and one for Br35H's "tumour, type unknown" slices (labels.ANY_TUMOR_ID).
    assert distance["class_ids"] == [0, 1, 2, 3, ANY_TUMOR_ID] and np.shape(distance["class_means"]) == (5, k)
