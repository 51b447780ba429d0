"""`python -m brain_tumor audit` and `fit-checks`, run in-process on a synthetic Kaggle folder."""

import json

from transformers import AutoConfig

from brain_tumor.__main__ import main
from helpers_models import save_tiny_model


def test_audit_prints_counts_per_class_and_the_method(kaggle_folder, capsys):
    assert main(["audit", str(kaggle_folder)]) == 0
    out = capsys.readouterr().out
    assert "Near-duplicate threshold: cosine similarity >= 0.99" in out
    assert "official test with a near train twin" in out and "clean_test split size" in out


def test_audit_json_and_bad_dataset(kaggle_folder, tmp_path, capsys):
    assert main(["audit", str(kaggle_folder), "--json"]) == 0
    audit = json.loads(capsys.readouterr().out)
    assert sum(audit["split_sizes"]["official_test"].values()) == 16
    assert main(["audit", str(tmp_path)]) == 2
    assert "not in the Kaggle layout" in capsys.readouterr().err


def test_fit_checks_stores_fitted_checks_in_the_model_config(kaggle_folder, tmp_path, capsys):
    model_dir = save_tiny_model(tmp_path / "tiny")
    assert main(["fit-checks", model_dir, str(kaggle_folder)]) == 0
    checks = AutoConfig.from_pretrained(model_dir).brain_tumor_checks
    assert checks["source"].startswith("fitted on")
    assert set(checks["uncertainty"]) >= {"min_top_probability", "min_margin"}
    assert checks["feature_distance"] is not None
    assert "min_top_probability" in capsys.readouterr().out
