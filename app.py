"""Gradio app (a Hugging Face Space) over brain_tumor.inference.Predictor.

Model: env BRAIN_TUMOR_MODEL (Hub id or folder), else the embedded model. Visitors may switch
only to the models an operator lists in BRAIN_TUMOR_ALLOWED_MODELS (comma-separated; off when
unset). API for scripts, declared with gr.api: `/predict` (one file -> {label: probability}) and
`/analyse` (one file -> label, probabilities, flags, reasons, verdict, slice). Run: `python app.py`.
The default model is compiled for answering in the background as the server starts (`torch.compile`;
BRAIN_TUMOR_COMPILE=0 turns it off): eager until then, then its API answers sooner.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import gradio as gr
from gradio import FileData
from PIL import Image

from brain_tumor import DEFAULT_MODEL
from brain_tumor.imaging import ACCEPTED, MAX_FILE_BYTES, ScanError, load_slice
from brain_tumor.model_registry import ModelRegistry, parse_allowed, parse_switch
from brain_tumor.modeling import ModelLoadError
from brain_tumor.presentation import api_record, heatmap_caption
from brain_tumor.uploads import UploadReader

HERE = Path(__file__).resolve().parent
EXAMPLES = sorted(str(p) for p in (HERE / "examples").glob("*") if p.suffix in (".jpg", ".png", ".dcm", ".gz", ".nii"))
NOTICE = (
    "**Research demo, not a medical device: do not use it for diagnosis.** "
    "Uploads are read in memory and deleted as soon as they are read; nothing is stored or logged, "
    "and flagging is off. Derived images (slice preview, heat map) are removed from the server "
    "within five minutes."
)
RESULT_LABEL = "Probabilities and heat map"
RAW_LABEL = "Raw model output: meaningless here, as this is not a brain MRI slice"

# Load once: the default model (pinned in memory) and the names of the allowed others.
MODELS = ModelRegistry(os.environ.get("BRAIN_TUMOR_MODEL", DEFAULT_MODEL),
                       parse_allowed(os.environ.get("BRAIN_TUMOR_ALLOWED_MODELS")),
                       compile_default=parse_switch(os.environ.get("BRAIN_TUMOR_COMPILE"), default=True))


# --- handlers ------------------------------------------------------------------------------------


def _read_upload(payload) -> dict:
    """Gradio's {path, orig_name} for an upload -> {"data", "name"}; the file is deleted from disk."""
    if payload and not isinstance(payload, dict):
        raise ScanError("Send one uploaded file (gradio_client: handle_file(path)).")
    data = UPLOADS.read((payload or {}).get("path"))
    return {"data": data, "name": payload.get("orig_name") or Path(payload["path"]).name}


def _for_display(image, side: int = 320):
    """Enlarge small images (the model sees 224 px) so the browser does not show a stamp."""
    if image is None or max(image.size) >= side:
        return image
    scale = side / max(image.size)
    return image.resize((round(image.width * scale), round(image.height * scale)), Image.BICUBIC)


def _show(stored, slice_index, model_name):
    """(slider, preview, result box, probabilities, heat map, caption, verdict) for one slice,
    and the number of slices in the file."""
    served = MODELS.get(model_name)
    scan = load_slice(stored["data"], filename=stored["name"], slice_index=slice_index)
    prediction = served.predictor.predict(scan)
    slider = gr.Slider(visible=False)
    if scan.num_slices > 1:
        slider = gr.Slider(minimum=0, maximum=scan.num_slices - 1, value=scan.slice_index, step=1, visible=True)
    # Not a brain MRI: the numbers and the map mean nothing, so they are folded away under a
    # label that says so, and the verdict gives the reason.
    result = gr.Accordion(RAW_LABEL if prediction.not_mri else RESULT_LABEL, open=not prediction.not_mri, visible=True)
    caption = "" if prediction.not_mri else heatmap_caption(prediction.label, served.localization)
    source = f"{scan.format}, slice {scan.slice_index + 1} of {scan.num_slices}" if scan.num_slices > 1 else scan.format
    notes = f" ({'; '.join(scan.notes)})" if scan.notes else ""
    verdict = f"**{prediction.verdict}**\n\n<small>Read as {source}{notes}.</small>"
    heatmap = _for_display(prediction.heatmap)
    return (slider, _for_display(scan.image), result, prediction.probabilities, heatmap, caption, verdict), scan.num_slices


def _cannot_read(error) -> tuple:
    message = f"### Cannot read this file\n{error}" if error else ""
    return gr.Slider(visible=False), None, gr.Accordion(visible=False), None, None, "", message


def analyse_upload(payload, model_name):
    """UI: a new upload -> (kept upload, *result widgets)."""
    if not payload:
        return None, *_cannot_read(None)
    try:
        stored = _read_upload(payload)
        outputs, num_slices = _show(stored, None, model_name)
    except (ScanError, ModelLoadError) as error:
        return None, *_cannot_read(error)
    # Only a file with several slices is kept, in this session's memory (gr.State with a time
    # limit), so the slider can show other slices without a second upload; never on disk.
    return (stored if num_slices > 1 else None), *outputs


def show_slice(stored, slice_index, model_name):
    """UI: classify another slice of the kept upload."""
    if not stored:  # gr.State's time limit has passed
        return _cannot_read("The upload has expired; please upload it again.")
    try:
        return _show(stored, None if slice_index is None else int(slice_index), model_name)[0]
    except (ScanError, ModelLoadError) as error:
        return _cannot_read(error)


def model_status(model_name) -> str:
    """UI: what the chosen model is, or why it cannot be used."""
    try:
        predictor = MODELS.get(model_name).predictor
    except ModelLoadError as error:
        return f"**Cannot use this model.** {error}"
    checks = "fitted checks" if predictor.checks_fitted else "default checks (this model has no fitted ones)"
    return f"Model `{model_name or MODELS.default_name}`: classes {', '.join(predictor.labels)}; {checks}."


def _api_prediction(payload, heatmap: bool = False):
    try:
        stored = _read_upload(payload)
        return MODELS.get(None).predictor.predict(load_slice(stored["data"], filename=stored["name"]), heatmap=heatmap)
    except (ScanError, ModelLoadError) as error:
        raise gr.Error(str(error)) from None


def predict(image_file: FileData) -> dict[str, float]:
    """One scan file in, {label: probability} out (the default model); the format gr.Label shows."""
    return _api_prediction(image_file).probabilities


def analyse(scan_file: FileData) -> dict:
    """One scan file in; out: label, probability, probabilities, uncertain, not_mri, reasons (a list),
    verdict, slice_index and num_slices (the default model). Check not_mri before using the label."""
    return api_record(_api_prediction(scan_file))


# --- layout --------------------------------------------------------------------------------------

with gr.Blocks(title="Brain tumour MRI classifier", delete_cache=(60, 300)) as demo:
    gr.Markdown(
        "# Brain tumour MRI classifier\n"
        "Classifies one axial brain MRI slice as glioma, meningioma, pituitary tumour or no tumour."
    )
    gr.Markdown(NOTICE, elem_id="notice")
    stored = gr.State(None, time_to_live=900)  # a multi-slice upload, in memory, for the slider
    with gr.Row():
        with gr.Column():
            file_in = gr.File(label=f"Scan file: {ACCEPTED}", elem_id="scan-file")
            slider = gr.Slider(label="Slice (3-D volumes, stacks)", minimum=0, maximum=1, step=1, visible=False)
            preview = gr.Image(label="Slice as read", type="pil", interactive=False, height=300)
        with gr.Column():
            verdict_out = gr.Markdown(elem_id="verdict")
            with gr.Accordion(RESULT_LABEL, open=True, visible=False, elem_id="result") as result_box:
                label_out = gr.Label(num_top_classes=4, label="Probabilities", elem_id="probabilities")
                heatmap_out = gr.Image(label="Heat map (predicted class)", interactive=False, height=300,
                                       elem_id="heatmap")
                caption_out = gr.Markdown(elem_id="heatmap-caption")
    gr.Examples(
        EXAMPLES, inputs=[file_in], label="Examples: real scans from the official test split, named by their true class"
    )
    with gr.Accordion("Model", open=False):
        if MODELS.switchable:
            model_in = gr.Dropdown(MODELS.names, value=MODELS.default_name, elem_id="model-choice",
                                   label="Model: the operator allows these on this server (for your next upload)")
        else:
            model_in = gr.State(MODELS.default_name)
            gr.Markdown("Switching models is off on this server: its operator can allow others with "
                        "`BRAIN_TUMOR_ALLOWED_MODELS`.")
        status = gr.Markdown(model_status(MODELS.default_name), elem_id="model-status")

    ui_outputs = [slider, preview, result_box, label_out, heatmap_out, caption_out, verdict_out]
    # preprocess=False hands the upload over as {path, orig_name}; UploadReader reads and deletes it.
    # (gr.File's own "filepath" preprocessing would also leave an empty temp file in the cache per call.)
    file_in.change(analyse_upload, [file_in, model_in], [stored, *ui_outputs], preprocess=False,
                   api_visibility="private")
    slider.release(show_slice, [stored, slider, model_in], ui_outputs, api_visibility="private")
    if MODELS.switchable:
        model_in.change(model_status, [model_in], [status], api_visibility="private")
    gr.api(predict, api_name="predict")
    gr.api(analyse, api_name="analyse")

# The gallery's example files live in Gradio's upload folder too (kept for every visitor): they stay.
UPLOADS = UploadReader(
    gr.utils.get_upload_folder(), MAX_FILE_BYTES,
    protected=lambda: set().union(*(getattr(block, "keep_in_cache", set()) for block in demo.blocks.values())),
)
# Bounded concurrency: two predictions at a time (CPU Spaces have two cores); up to 256 waiting.
demo.queue(default_concurrency_limit=2, max_size=256)

if __name__ == "__main__":
    # The operator's log: which model serves, and (from the compiling thread) when or why not compiled.
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("brain_tumor").setLevel(logging.INFO)
    how = (f"not loaded ({MODELS.start_error})" if MODELS.start_error else
           "eager, compiling for answering in the background" if MODELS.compiling else "eager")
    print(f"Default model {MODELS.default_name}: {how}", flush=True)
    demo.launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        max_file_size=MAX_FILE_BYTES,
    )
