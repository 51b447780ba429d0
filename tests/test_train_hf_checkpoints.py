"""End to end: train_hf.main() fine-tunes checkpoint folders of every processor family, and resumes.

Each family's tiny checkpoint is saved with its real image processor (see tiny_checkpoints.py);
a run with and one without --image_size must train, save, and give a folder pipeline() loads and
that preprocesses as training did.
"""

import json

import numpy as np
import pytest
from PIL import Image
from transformers import AutoImageProcessor, pipeline

import train_hf
from brain_tumor.labels import CLASS_NAMES
from tiny_checkpoints import FAMILIES, NATIVE_SIZE, save_checkpoint

# Two steps, no evaluation or checkpoints while training: the steps after training (calibration,
# test evaluation, checks, saving) still all run.
QUICK = ["--max_steps", "2", "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "32",
         "--eval_strategy", "no", "--save_strategy", "no", "--load_best_model_at_end", "false",
         "--logging_steps", "1", "--seed", "0"]
# What `--image_size` leaves in preprocessor_config.json: ConvNeXt/ResNet's shortest-edge-and-crop
# processor becomes a plain square resize; the others keep their class with the crop turned off.
SAVED_CLASS = {"convnext": "ViTImageProcessor", "resnet": "ViTImageProcessor", "vit": "ViTImageProcessor",
               "efficientnet": "EfficientNetImageProcessor", "mobilenet_v2": "MobileNetV2ImageProcessor"}


def wide_slice() -> Image.Image:
    """A non-square grey slice: a crop or an aspect-keeping resize would not give a square."""
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (50, 90), dtype=np.uint8), mode="L")


@pytest.mark.parametrize("image_size", [None, 48])
@pytest.mark.parametrize("family", FAMILIES)
def test_checkpoint_of_each_processor_family_fine_tunes_and_serves(family, image_size, kaggle_folder, tmp_path):
    checkpoint = save_checkpoint(tmp_path / "checkpoint", family)
    output_dir = tmp_path / "model"
    size_flag = ["--image_size", str(image_size)] if image_size else []
    results = train_hf.main(["--model_name_or_path", str(checkpoint), "--dataset_name", str(kaggle_folder),
                             "--output_dir", str(output_dir), *size_flag, *QUICK])
    assert results["official_test"]["images"] == 16

    side = image_size or NATIVE_SIZE
    saved = json.loads((output_dir / "preprocessor_config.json").read_text())
    original = json.loads((checkpoint / "preprocessor_config.json").read_text())
    assert saved["image_processor_type"] == (SAVED_CLASS[family] if image_size else original["image_processor_type"])
    assert (saved["image_mean"], saved["image_std"]) == (original["image_mean"], original["image_std"])
    processor = AutoImageProcessor.from_pretrained(output_dir)
    assert processor(wide_slice().convert("RGB"), return_tensors="pt")["pixel_values"].shape == (1, 3, side, side)

    classify = pipeline("image-classification", model=str(output_dir))
    assert type(classify.image_processor) is type(processor)
    answer = classify(wide_slice(), top_k=4)
    assert sorted(item["label"] for item in answer) == sorted(CLASS_NAMES)


def test_resume_from_checkpoint_continues_where_the_first_run_stopped(kaggle_folder, tmp_path):
    common = ["--config_name", "resnet-mini", "--image_size", "32", "--dataset_name", str(kaggle_folder),
              "--max_steps", "4", "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "32",
              "--eval_strategy", "no", "--load_best_model_at_end", "false", "--save_strategy", "steps",
              "--save_steps", "2", "--logging_steps", "1", "--seed", "0"]
    first, resumed = tmp_path / "first", tmp_path / "resumed"
    train_hf.main([*common, "--output_dir", str(first)])
    train_hf.main([*common, "--output_dir", str(resumed), "--resume_from_checkpoint", str(first / "checkpoint-2")])

    # Resumed at step 2: only step 4 is saved again, and the state carries the first run's history.
    assert sorted(path.name for path in resumed.glob("checkpoint-*")) == ["checkpoint-4"]
    state = json.loads((resumed / "checkpoint-4" / "trainer_state.json").read_text())
    first_state = json.loads((first / "checkpoint-2" / "trainer_state.json").read_text())
    assert state["global_step"] == 4
    assert state["log_history"][:len(first_state["log_history"])] == first_state["log_history"]
    assert [entry["step"] for entry in state["log_history"] if "loss" in entry] == [1, 2, 3, 4]


def test_config_overrides_travel_into_the_saved_model_and_its_card(kaggle_folder, tmp_path):
    checkpoint = save_checkpoint(tmp_path / "checkpoint", "mobilenet_v2")
    output_dir = tmp_path / "model"
    train_hf.main(["--model_name_or_path", str(checkpoint), "--dataset_name", str(kaggle_folder),
                   "--config_overrides", "tf_padding=false", "--output_dir", str(output_dir), *QUICK])
    assert json.loads((checkpoint / "config.json").read_text())["tf_padding"] is True
    assert json.loads((output_dir / "config.json").read_text())["tf_padding"] is False
    assert "--config_overrides tf_padding=false" in (output_dir / "README.md").read_text()
    answer = pipeline("image-classification", model=str(output_dir))(wide_slice(), top_k=4)
    assert sorted(item["label"] for item in answer) == sorted(CLASS_NAMES)
