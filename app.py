"""Gradio app (a Hugging Face Space) over brain_tumor.inference.Predictor.

Model: env BRAIN_TUMOR_MODEL (Hub id or folder), else the embedded model. API: `/predict`
takes one image file and returns {label: probability}. Run: `python app.py` (port 7860).
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from pathlib import Path

import gradio as gr
from PIL import Image

from brain_tumor import DEFAULT_MODEL
from brain_tumor.imaging import ACCEPTED, MAX_FILE_BYTES, ScanError, load_slice
from brain_tumor.inference import ModelLoadError, Predictor

HERE = Path(__file__).resolve().parent
EXAMPLES = sorted(str(p) for p in (HERE / "examples").glob("*") if p.suffix in (".jpg", ".png", ".dcm", ".gz", ".nii"))
START_MODEL = os.environ.get("BRAIN_TUMOR_MODEL", DEFAULT_MODEL)
UPLOAD_DIR = Path(gr.utils.get_upload_folder()).resolve()

NOTICE = (
    "**Research demo, not a medical device: do not use it for diagnosis.** "
    "Uploads are read in memory and deleted as soon as they are read; nothing is stored or logged, "
    "and flagging is off. Derived images (slice preview, heat map) are removed from the server "
    "within five minutes."
)


class Models:
    """Loaded predictors by name. Each browser session picks its own model, so one visitor
    switching models never changes what another sees; a few stay loaded (LRU) to bound memory."""

    def __init__(self, keep: int = 3):
        self.keep, self._loaded = keep, OrderedDict()
        self._lock, self._load_lock = threading.Lock(), threading.Lock()
        self.start_error = None
        try:
            self.get(START_MODEL)
        except ModelLoadError as error:  # keep serving: the page explains what is missing
            self.start_error = str(error)

    def get(self, name: str) -> Predictor:
        with self._lock:
            if name in self._loaded:
                self._loaded.move_to_end(name)
                return self._loaded[name]
        # Loading (maybe a Hub download) happens outside the lock, so requests on models already
        # loaded never wait for it; one load at a time keeps memory bounded.
        with self._load_lock:
            with self._lock:
                if name in self._loaded:
                    return self._loaded[name]
            predictor = Predictor.from_pretrained(name)
            with self._lock:
                self._loaded[name] = predictor
                while len(self._loaded) > self.keep:
                    self._loaded.popitem(last=False)
            return predictor


MODELS = Models()


class Uploads:
    """Reads Gradio's copy of an upload, then deletes it from disk at once.

    Gradio stores an upload at <cache>/<sha256 of its content>/<name>, so two requests that
    upload the same file share one path: the first to run deletes it while the second may still
    wait in the queue. So the bytes of a deleted upload stay in this process's memory (never on
    disk) for up to ten minutes, under that path; same path, same content, by construction.
    """

    ttl_s, max_bytes = 600, 256 * 2**20

    def __init__(self):
        self._recent, self._lock, self._swept = OrderedDict(), threading.Lock(), 0.0

    def read(self, payload) -> tuple[bytes, str]:
        if not payload:
            raise ScanError(f"No file was uploaded. Upload one {ACCEPTED} file.")
        path = Path(payload["path"]).resolve()
        name = payload.get("orig_name") or path.name
        self._expire()
        try:
            size = path.stat().st_size
            data = path.read_bytes() if size <= MAX_FILE_BYTES else None
        except FileNotFoundError:  # deleted by a request that uploaded the same file
            with self._lock:
                data = self._recent.get(str(path), (None,))[0]
            if data is None:
                raise ScanError("The uploaded file is no longer on the server; please upload it again.") from None
            return data, name
        if self._is_upload(path):
            if data is not None:
                with self._lock:
                    self._recent[str(path)] = (data, time.monotonic())
                    self._recent.move_to_end(str(path))
            path.unlink(missing_ok=True)
        if data is None:
            raise ScanError(f"The file is {size / 2**20:.0f} MB; the limit is {MAX_FILE_BYTES // 2**20} MB.")
        return data, name

    @staticmethod
    def _is_upload(path: Path) -> bool:
        # Example files live in Gradio's cache too (kept for the gallery); only uploads go.
        kept = set().union(*(getattr(block, "keep_in_cache", set()) for block in demo.blocks.values()))
        return UPLOAD_DIR in path.parents and path not in {Path(p).resolve() for p in kept}

    def _expire(self) -> None:
        now = time.monotonic()
        with self._lock:
            total = sum(len(data) for data, _ in self._recent.values())
            while self._recent:
                data, added = next(iter(self._recent.values()))  # oldest first
                if total <= self.max_bytes and added > now - self.ttl_s:
                    break
                self._recent.popitem(last=False)
                total -= len(data)
            sweep = now - self._swept > 60
            self._swept = now if sweep else self._swept
        if sweep:  # empty <sha256> folders would still tell which content was uploaded
            for folder in UPLOAD_DIR.iterdir() if UPLOAD_DIR.is_dir() else ():
                try:
                    if folder.is_dir() and time.time() - folder.stat().st_mtime > 60 and not any(folder.iterdir()):
                        folder.rmdir()
                except OSError:
                    pass  # raced with an upload or another sweep: try again next time


UPLOADS = Uploads()


def _format(prediction) -> str:
    scan = prediction.scan
    source = f"{scan.format}, slice {scan.slice_index + 1} of {scan.num_slices}" if scan.num_slices > 1 else scan.format
    notes = f" ({'; '.join(scan.notes)})" if scan.notes else ""
    return f"**{prediction.verdict}**\n\n<small>Read as {source}{notes}.</small>"


def _for_display(image, side: int = 320):
    """Enlarge small images (the model sees 224 px) so the browser does not show a stamp."""
    if image is None or max(image.size) >= side:
        return image
    scale = side / max(image.size)
    return image.resize((round(image.width * scale), round(image.height * scale)), Image.BICUBIC)


def analyse(payload, model_name):
    """UI: file -> (stored bytes, slider, preview, probabilities, heat map, verdict)."""
    empty = (None, gr.Slider(visible=False), None, None, None)
    if not payload:
        return (*empty, "")
    try:
        data, name = UPLOADS.read(payload)
        stored = {"data": data, "name": name}
        outputs, num_slices = _render(stored, None, model_name)
    except (ScanError, ModelLoadError) as error:
        return (*empty, f"### Cannot read this file\n{error}")
    # Only a file with several slices is kept, in this session's memory (gr.State with a time
    # limit), so the slider can show other slices without a second upload; never on disk.
    return (stored if num_slices > 1 else None, *outputs)


def show_slice(stored, slice_index, model_name):
    """UI: classify another slice of the stored upload."""
    if not stored:
        return gr.Slider(visible=False), None, None, None, ""
    try:
        return _render(stored, None if slice_index is None else int(slice_index), model_name)[0]
    except (ScanError, ModelLoadError) as error:
        return gr.Slider(visible=False), None, None, None, f"### Cannot read this file\n{error}"


def _render(stored, slice_index, model_name):
    predictor = MODELS.get(model_name or START_MODEL)
    scan = load_slice(stored["data"], filename=stored["name"], slice_index=slice_index)
    prediction = predictor.predict(scan)
    slider = gr.Slider(visible=False)
    if scan.num_slices > 1:
        slider = gr.Slider(minimum=0, maximum=scan.num_slices - 1, value=scan.slice_index, step=1, visible=True)
    preview, heatmap = _for_display(scan.image), _for_display(prediction.heatmap)
    outputs = (slider, preview, prediction.probabilities, heatmap, _format(prediction))
    return outputs, scan.num_slices


def predict(image_file) -> dict[str, float]:
    """API `/predict`: one image file in, {label: probability} out (the default model)."""
    try:
        data, name = UPLOADS.read(image_file)
        return MODELS.get(START_MODEL).predict(load_slice(data, filename=name), heatmap=False).probabilities
    except (ScanError, ModelLoadError) as error:
        raise gr.Error(str(error)) from None


def switch_model(name):
    """UI: load another model (Hub id or folder) for this session; errors keep the old one."""
    name = (name or "").strip() or START_MODEL
    try:
        predictor = MODELS.get(name)
    except ModelLoadError as error:
        return gr.skip(), f"**Could not load that model.** {error}"
    return name, _model_status(name, predictor)


def _model_status(name, predictor=None) -> str:
    if predictor is None:
        return f"**No model loaded.** {MODELS.start_error} Enter a Hub id or a model folder below."
    checks = "fitted checks" if predictor.checks_fitted else "default checks (this model has no fitted ones)"
    return f"Model: `{name}` - classes {', '.join(predictor.labels)}; {checks}."


with gr.Blocks(title="Brain tumour MRI classifier", delete_cache=(60, 300)) as demo:
    gr.Markdown(
        "# Brain tumour MRI classifier\n"
        "Classifies one axial brain MRI slice as glioma, meningioma, pituitary tumour or no tumour."
    )
    gr.Markdown(NOTICE, elem_id="notice")
    model_name = gr.State(START_MODEL)
    stored = gr.State(None, time_to_live=900)  # a multi-slice upload, in memory, for the slider
    with gr.Row():
        with gr.Column():
            file_in = gr.File(label=f"Scan file: {ACCEPTED}", elem_id="scan-file")
            slider = gr.Slider(label="Slice (3-D volumes, stacks)", minimum=0, maximum=1, step=1, visible=False)
            preview = gr.Image(label="Slice as read", type="pil", interactive=False, height=300)
        with gr.Column():
            label_out = gr.Label(num_top_classes=4, label="Probabilities", elem_id="probabilities")
            heatmap_out = gr.Image(
                label="Heat map (Grad-CAM, predicted class)", interactive=False, height=300, elem_id="heatmap"
            )
            verdict_out = gr.Markdown(elem_id="verdict")
    gr.Examples(
        EXAMPLES, inputs=[file_in], label="Examples: real scans from the official test split, named by their true class"
    )
    with gr.Accordion("Model", open=False):
        status = gr.Markdown(_model_status(START_MODEL, None if MODELS.start_error else MODELS.get(START_MODEL)))
        with gr.Row():
            model_box = gr.Textbox(label="Model: Hugging Face Hub id or local folder", placeholder=START_MODEL, scale=4)
            load_button = gr.Button("Load model", scale=1)

    ui_outputs = [slider, preview, label_out, heatmap_out, verdict_out]
    # preprocess=False hands the upload over as {path, orig_name}: Gradio still checks that the
    # path is one of its uploads, and we delete the file ourselves once read. (gr.File's own
    # "filepath" preprocessing would also leave an empty temp file in the cache per call.)
    file_in.change(analyse, [file_in, model_name], [stored, *ui_outputs], preprocess=False, api_visibility="private")
    slider.release(show_slice, [stored, slider, model_name], ui_outputs, api_visibility="private")
    load_button.click(switch_model, [model_box], [model_name, status], api_visibility="private")
    model_box.submit(switch_model, [model_box], [model_name, status], api_visibility="private")
    # The API endpoint: hidden components, so the page stays simple.
    api_file = gr.File(visible=False)
    api_out = gr.JSON(visible=False)
    gr.Button(visible=False).click(predict, [api_file], [api_out], api_name="predict", preprocess=False)

# Bounded concurrency: two predictions at a time (CPU Spaces have two cores); up to 256 waiting.
demo.queue(default_concurrency_limit=2, max_size=256)

if __name__ == "__main__":
    demo.launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        max_file_size=MAX_FILE_BYTES,
    )
