"""End to end: train_hf.main() on a tiny synthetic dataset, then load what it wrote with pipeline()."""

import json
from pathlib import Path

import numpy as np
import pytest
from huggingface_hub import HfApi
from transformers import pipeline

import train_hf
from brain_tumor.data import DatasetError
from brain_tumor.labels import CLASS_NAMES
from brain_tumor.modeling import ModelLoadError
from synthetic import make_slice

TINY_RUN = ["--config_name", "resnet-mini", "--image_size", "32", "--max_steps", "6",
            "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "16",
            "--eval_strategy", "steps", "--eval_steps", "3", "--save_strategy", "steps", "--save_steps", "3",
            "--learning_rate", "1e-3", "--logging_steps", "1", "--seed", "0"]


@pytest.fixture(scope="module")
def trained_run(kaggle_folder, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("run") / "model"
    results = train_hf.main(["--dataset_name", str(kaggle_folder), "--output_dir", str(output_dir), *TINY_RUN])
    return output_dir, results


def test_pipeline_loads_the_output_and_answers_with_the_four_labels(trained_run, tmp_path):
    output_dir, _ = trained_run
    image_path = tmp_path / "slice.png"
    make_slice("glioma", np.random.default_rng(0), 64).save(image_path)
    classify = pipeline("image-classification", model=str(output_dir))
    answer = classify(str(image_path), top_k=4)
    assert sorted(item["label"] for item in answer) == sorted(CLASS_NAMES)
    assert abs(sum(item["score"] for item in answer) - 1) < 1e-4


def test_results_card_and_plots_are_written(trained_run):
    output_dir, results = trained_run
    saved = json.loads((output_dir / "all_results.json").read_text())
    assert saved["official_test"]["images"] == 16 and saved["clean_test"]["images"] <= 16
    assert saved["temperature"] == pytest.approx(results["temperature"]) and results["temperature"] > 0
    for split in ("official_test", "clean_test"):
        assert set(saved[split]) >= {"accuracy", "macro_f1", "ece", *(f"recall_{c}" for c in CLASS_NAMES)}
        assert (output_dir / f"confusion_matrix_{split}.png").stat().st_size > 1000
    card = (output_dir / "README.md").read_text()
    assert "pipeline_tag: image-classification" in card and "model-index" in card
    assert "split: official_test" in card and "split: clean_test" in card
    assert "not for diagnosis" in card and "python train_hf.py --dataset_name" in card
    assert "(split seed 0)" in card  # TINY_RUN's --seed, as no --split_seed is given
    config = json.loads((output_dir / "config.json").read_text())
    assert config["id2label"] == {str(i): name for i, name in enumerate(CLASS_NAMES)}
    checks = config["brain_tumor_checks"]  # fitted for the app's "uncertain" / "not an MRI" flags
    assert {"uncertainty", "image_statistics", "feature_distance"} <= set(checks)


def test_push_to_hub_uploads_the_output_folder(kaggle_folder, tmp_path, monkeypatch):
    calls = {}

    class RepoUrl(str):
        repo_id = "someone/brain-tumor-test"

    # The Hub's network boundary: the two HfApi calls push_folder makes.
    def create_repo(self, repo_id, **kwargs):
        calls["create"] = repo_id
        return RepoUrl(f"https://huggingface.co/{repo_id}")

    def upload_folder(self, **kwargs):
        calls["upload"] = {**kwargs, "files": sorted(p.name for p in Path(kwargs["folder_path"]).iterdir())}

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    output_dir = tmp_path / "pushed"
    train_hf.main(["--dataset_name", str(kaggle_folder), "--output_dir", str(output_dir), *TINY_RUN,
                   "--max_steps", "2", "--push_to_hub", "--hub_model_id", "someone/brain-tumor-test"])
    assert calls["create"] == "someone/brain-tumor-test"
    upload = calls["upload"]
    assert upload["repo_id"] == "someone/brain-tumor-test" and upload["folder_path"] == str(output_dir)
    assert {"README.md", "config.json", "model.safetensors", "preprocessor_config.json",
            "confusion_matrix_clean_test.png"} <= set(upload["files"])
    assert "checkpoint-*" in upload["ignore_patterns"]
    assert "someone/brain-tumor-test" in (output_dir / "README.md").read_text()


def test_missing_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="--dataset_name is required"):
        train_hf.main(["--output_dir", str(tmp_path), *TINY_RUN])


def test_checkpoint_and_config_together_is_a_clear_error(tmp_path, kaggle_folder):
    with pytest.raises(ValueError, match="either --model_name_or_path.*or --config_name"):
        train_hf.main(["--dataset_name", str(kaggle_folder), "--model_name_or_path", "x", "--output_dir",
                       str(tmp_path), *TINY_RUN])


def test_hub_model_while_offline_is_a_clear_error(tmp_path, kaggle_folder):
    with pytest.raises(ModelLoadError, match="Could not load 'facebook/convnext-tiny-224' from the Hugging Face Hub.*local model folder"):
        train_hf.main(["--dataset_name", str(kaggle_folder), "--output_dir", str(tmp_path), "--max_steps", "1"])


def test_hub_dataset_while_offline_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="Could not load dataset 'someone/mri'"):
        train_hf.main(["--dataset_name", "someone/mri", "--output_dir", str(tmp_path), *TINY_RUN])


def test_unknown_preset_is_a_clear_error(tmp_path, kaggle_folder):
    with pytest.raises(ModelLoadError, match="Unknown config 'resnet-huge'.*resnet18-half"):
        train_hf.main(["--dataset_name", str(kaggle_folder), "--config_name", "resnet-huge",
                       "--output_dir", str(tmp_path), "--max_steps", "1"])


@pytest.mark.parametrize("flag, value, message", [
    ("--linear_probe_epochs", "-1", "--linear_probe_epochs must be 0 or more"),
    ("--weight_average_from", "1", "--weight_average_from must be a share from 0 to below 1"),
    ("--style_mixing", "1.5", "--style_mixing must be a probability from 0 to 1"),
    ("--backbone_learning_rate_factor", "0", "--backbone_learning_rate_factor must be above 0 and at most 1"),
    ("--transplant_t2_share", "0.5", "--transplant_t2_share must be a share from 0 to 1 and needs --lesion"),
    ("--transplant_t2_grow", "2", "--transplant_t2_grow must be 1 or more and, above 1, needs"),
    ("--transplant_t2_core_floor", "0.3", "--transplant_t2_core_floor must be above 0 and at most 1 and, below 1"),
    ("--exclude_files", "no-such-list.txt", "--exclude_files must name a text file of file names"),
])
def test_a_flag_out_of_range_or_without_what_it_needs_is_a_clear_error(tmp_path, kaggle_folder, flag, value, message):
    with pytest.raises(ValueError, match=message):
        train_hf.main(["--dataset_name", str(kaggle_folder), "--output_dir", str(tmp_path), *TINY_RUN,
                       flag, value])


def test_json_file_replaces_the_flags(tmp_path, kaggle_folder):
    args = {"dataset_name": str(kaggle_folder), "config_name": "resnet-mini", "image_size": 40,
            "output_dir": str(tmp_path / "out")}
    (tmp_path / "args.json").write_text(json.dumps(args))
    model_args, data_args, training_args = train_hf.parse_args([str(tmp_path / "args.json")])
    # --dataset_name takes several collections, so a single one comes back as a one-element list.
    assert (model_args.config_name, model_args.image_size, data_args.dataset_name) == ("resnet-mini", 40, [str(kaggle_folder)])
    assert training_args.metric_for_best_model == "balanced_score" and training_args.load_best_model_at_end


@pytest.mark.parametrize("split_flags, split_seed", [([], 43), (["--split_seed", "42"], 42)])
def test_the_splits_follow_the_training_seed_unless_a_split_seed_is_given(kaggle_folder, tmp_path, split_flags,
                                                                           split_seed):
    _, data_args, training_args = train_hf.parse_args(["--dataset_name", str(kaggle_folder), "--output_dir",
                                                       str(tmp_path), "--seed", "43", *split_flags])
    assert data_args.recipe(training_args.seed)["seed"] == split_seed


def test_several_collections_with_coarse_labels_masks_and_a_held_out_collection(kaggle_folder, tmp_path):
    from PIL import Image
    from safetensors.torch import load_file
    from synthetic import make_flat_folder
    from transformers import AutoConfig, AutoModelForImageClassification

    # Masks mirror the Kaggle folder's training tumour slices (a square where each class puts its blob).
    for image in (kaggle_folder / "Training").rglob("*.jpg"):
        if image.parent.name != "notumor":
            mask = np.zeros((64, 64), np.uint8)
            mask[16:48, 16:48] = 255
            target = tmp_path / "masks" / image.relative_to(kaggle_folder).with_suffix(".png")
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(mask).save(target)
    flat = make_flat_folder(tmp_path / "flat", seed=3)
    held = make_flat_folder(tmp_path / "held", {"yes": 6, "no": 6}, seed=4)
    output_dir = tmp_path / "model"
    results = train_hf.main(["--dataset_name", f"{kaggle_folder},{flat}", "--held_out_dataset", str(held),
                             "--masks_name_or_path", str(tmp_path / "masks"), "--mask_loss_weight", "0.5",
                             "--lesion_transplant", "0.5", "--correct_transplant_prior",
                             "--transplant_t2_share", "0.5", "--transplant_t2_grow", "1.5",
                             "--transplant_t2_core_floor", "0.5",
                             "--output_dir", str(output_dir), *TINY_RUN])
    assert set(results["clean_test_by_collection"]) == {kaggle_folder.name, "flat"}
    assert results["transplant_prior_offset"] > np.log(2)  # at least log(1 / (1 - 0.5)): tumours gained mass too
    assert "tumour_recall" in results["held_out_by_collection"]["held"]
    # The mask loss trains no extra module: the saved weights are exactly a standard model's.
    fresh = AutoModelForImageClassification.from_config(AutoConfig.from_pretrained(output_dir))
    assert set(load_file(str(output_dir / "model.safetensors"))) == set(fresh.state_dict())
    assert json.loads((output_dir / "data_recipe.json").read_text())["held_out"] == [str(held)]
    card = (output_dir / "README.md").read_text()
    assert "Lesion transplant: 50 % of no-tumour training slices" in card
    assert "50 % of the pastes are drawn as T2 and FLAIR show most tumours" in card
    assert "These grow up to 1.5 times longer" in card
    assert "Their cores lie anywhere from 50 % of the way" in card
    assert f"moved up by {results['transplant_prior_offset']:.3f}" in card
    answer = pipeline("image-classification", model=str(output_dir))(str(next(held.rglob("*.jpg"))), top_k=4)
    assert sorted(item["label"] for item in answer) == sorted(CLASS_NAMES)


def test_linear_probe_epochs_train_the_head_first_and_the_card_says_so(kaggle_folder, tmp_path):
    output_dir = tmp_path / "model"
    run = [*TINY_RUN, "--linear_probe_epochs", "1"]
    results = train_hf.main(["--dataset_name", str(kaggle_folder), "--output_dir", str(output_dir), *run])
    assert results["temperature"] > 0 and (output_dir / "model.safetensors").exists()
    assert not (output_dir / "linear_probe").exists()  # the probe's Trainer writes into a scratch folder
    assert "trained the classifier head alone" in (output_dir / "README.md").read_text()


def test_exclude_files_leave_training_and_the_recipe_and_card_say_so(kaggle_folder, tmp_path):
    notumor = sorted(path.name for path in (kaggle_folder / "Training" / "notumor").iterdir())
    listed = tmp_path / "doubted.txt"
    listed.write_text(f"# doubted by an audit\n{notumor[0]}\n\n{notumor[1]}  # a comment after a name\n")
    output_dir = tmp_path / "model"
    train_hf.main(["--dataset_name", str(kaggle_folder), "--exclude_files", str(listed), "--output_dir",
                   str(output_dir), *TINY_RUN])
    recipe = json.loads((output_dir / "data_recipe.json").read_text())
    assert recipe["excluded_files"] == notumor[:2]
    card = (output_dir / "README.md").read_text()
    assert "images were left out by name (`--exclude_files`, 2 names listed" in card


@pytest.mark.parametrize("flag, value, card_text", [
    ("--style_mixing", "0.5", "Feature styles were mixed in training (MixStyle, probability 0.5"),
    ("--backbone_learning_rate_factor", "0.2", "backbone trained at 0.2 times the classifier head's learning rate"),
])
def test_a_training_only_option_trains_and_the_card_says_so(kaggle_folder, tmp_path, flag, value, card_text):
    output_dir = tmp_path / "model"
    results = train_hf.main(["--dataset_name", str(kaggle_folder), "--output_dir", str(output_dir), *TINY_RUN,
                             flag, value])
    assert results["train_images"] > 0
    assert card_text in (output_dir / "README.md").read_text()


def test_channels_last_training_saves_a_model_pipeline_loads(kaggle_folder, tmp_path):
    from transformers import pipeline

    output_dir = tmp_path / "model"
    results = train_hf.main(["--dataset_name", str(kaggle_folder), "--output_dir", str(output_dir), *TINY_RUN,
                             "--channels_last", "True"])
    assert results["train_images"] > 0
    scores = pipeline("image-classification", model=str(output_dir))(str(next(kaggle_folder.rglob("*.jpg"))))
    assert sum(row["score"] for row in scores) == pytest.approx(1.0, abs=1e-5)


@pytest.fixture(scope="module")
def averaged_run(kaggle_folder, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("averaged") / "model"
    run = [*TINY_RUN, "--weight_average_from", "0.5"]
    results = train_hf.main(["--dataset_name", str(kaggle_folder), "--output_dir", str(output_dir), *run])
    return output_dir, results


def test_weight_average_from_serves_the_average_and_the_card_says_so(averaged_run):
    output_dir, results = averaged_run
    assert results["weights_averaged_over_steps"] == 3  # steps 4 to 6 of TINY_RUN's 6
    assert "averaged_balanced_score" in results["validation_averaged"]
    assert results["validation_best_checkpoint"]["step"] in (3, 6)
    assert "average of those after every optimizer step from 50% of training" in (output_dir / "README.md").read_text()


def test_finalize_checkpoint_gives_a_checkpoint_the_runs_correction_and_a_fitted_temperature(averaged_run, tmp_path):
    import torch
    from transformers import AutoModelForImageClassification

    from bench.finalize_checkpoint import main as finalize
    from brain_tumor.labels import NOTUMOR_ID

    output_dir, _ = averaged_run
    run = tmp_path / "run"  # a copy whose recorded correction is not zero, so the shift is seen
    run.mkdir()
    for name in ("data_recipe.json", "preprocessor_config.json"):
        (run / name).write_bytes((output_dir / name).read_bytes())
    (run / "all_results.json").write_text(json.dumps({"transplant_prior_offset": 0.7}))
    checkpoint = output_dir / "checkpoint-3"
    summary = finalize(["--run", str(run), "--checkpoint", str(checkpoint), "--output_dir", str(tmp_path / "out")])

    pixels = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        raw = AutoModelForImageClassification.from_pretrained(checkpoint).eval()(pixel_values=pixels).logits
        served = AutoModelForImageClassification.from_pretrained(tmp_path / "out").eval()(pixel_values=pixels).logits
    raw[:, NOTUMOR_ID] += 0.7
    assert summary["temperature"] > 0
    torch.testing.assert_close(served, raw / summary["temperature"])
    assert json.loads((tmp_path / "out" / "all_results.json").read_text())["temperature"] == summary["temperature"]
    make_slice("glioma", np.random.default_rng(0), 64).save(tmp_path / "slice.png")
    answer = pipeline("image-classification", model=str(tmp_path / "out"))(str(tmp_path / "slice.png"), top_k=4)
    assert sorted(item["label"] for item in answer) == sorted(CLASS_NAMES)
