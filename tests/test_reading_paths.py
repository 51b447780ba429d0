"""bench/reading_paths.py: the Trainer's reading of a slice against the app's, and the report of differences."""

from pathlib import Path

from helpers_models import build_tiny_model
from PIL import Image

from bench.reading_paths import PATHS, disagreements, trainer_answers
from brain_tumor.inference import Predictor

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.jpg"))


def test_disagreements_name_each_slice_whose_answers_differ():
    files = ["/data/yes/a.jpg", "/data/yes/b.jpg"]
    answers = {"trainer": ["glioma", "notumor"], "pipeline": ["glioma", "notumor"],
               "predictor": ["glioma", "meningioma"], "trainer_on_predictor_decoding": ["glioma", "meningioma"]}
    differ = disagreements(files, answers)
    assert len(differ) == len(PATHS) * (len(PATHS) - 1) // 2
    assert differ["trainer vs pipeline"] == [] and differ["predictor vs trainer_on_predictor_decoding"] == []
    assert differ["trainer vs predictor"] == ["b.jpg: notumor / meningioma"]


def test_the_trainer_reads_a_gray_slice_as_the_app_does():
    model, processor = build_tiny_model("resnet")
    gray = [Image.open(p).convert("L") for p in EXAMPLES]
    app = Predictor(model, processor, checks={}).predict_batch(gray, batch_size=len(gray))
    assert trainer_answers(model, processor, gray, batch_size=len(gray)) == [p.label for p in app]
