"""The app as users and clients meet it: `python app.py` in a subprocess on a free loopback port,
driven through gradio_client and the plain HTTP API; plus the UI handlers called in-process."""

import importlib
import json
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import nibabel as nib
import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from helpers_models import save_tiny_model
from PIL import Image
from helpers_app import make_food_photo, start_app, stop_app
from imaging_samples import BAD_NAMES

from brain_tumor.labels import CLASS_NAMES

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "glioma_Te-gl_0010.jpg"
RECORD_KEYS = {"label", "probability", "probabilities", "uncertain", "not_mri", "reasons", "verdict", "slice_index"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # Eager whatever the environment says: the compiled server below is compared with it.
    server = start_app(tmp_path_factory, "app", BRAIN_TUMOR_COMPILE="0")
    yield server
    stop_app(server)


@pytest.fixture(scope="module")
def client(server):
    return Client(server.url, verbose=False, download_files=False)


def assert_four_labels(result):
    assert isinstance(result, dict) and sorted(result) == sorted(CLASS_NAMES)
    assert sum(result.values()) == pytest.approx(1.0, abs=1e-4)


def test_predict_endpoint_returns_label_dict(client):
    assert {"/predict", "/analyse"} <= set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert_four_labels(client.predict(handle_file(str(EXAMPLE)), api_name="/predict"))


EXAMPLE_FILES = [p for p in sorted((ROOT / "examples").iterdir()) if p.suffix in (".jpg", ".dcm", ".gz")]


@pytest.mark.parametrize("example", EXAMPLE_FILES, ids=lambda p: p.name)
def test_every_example_is_answered(client, example):
    assert_four_labels(client.predict(handle_file(str(example)), api_name="/predict"))


def test_analyse_returns_the_full_record(client):
    record = client.predict(handle_file(str(EXAMPLE)), api_name="/analyse")
    assert RECORD_KEYS <= set(record)
    assert_four_labels(record["probabilities"])
    assert record["label"] in CLASS_NAMES and record["probability"] == max(record["probabilities"].values())
    assert isinstance(record["reasons"], list) and all(isinstance(r, str) for r in record["reasons"])
    assert record["not_mri"] is False and record["slice_index"] == 0 and record["verdict"]


def test_analyse_food_photo_is_not_mri_with_reasons(client, tmp_path):
    record = client.predict(handle_file(str(make_food_photo(tmp_path / "pizza.jpg"))), api_name="/analyse")
    assert record["not_mri"] is True
    assert any("colour" in reason for reason in record["reasons"])
    assert record["verdict"].startswith("This does not look like a brain MRI slice")


def test_analyse_volume_reports_the_slice(client, tmp_path):
    volume = np.zeros((64, 64, 9), dtype=np.int16)
    volume[10:54, 8:56, :] = 300
    nib.save(nib.Nifti1Image(volume, np.eye(4)), str(tmp_path / "v.nii.gz"))
    record = client.predict(handle_file(str(tmp_path / "v.nii.gz")), api_name="/analyse")
    assert record["slice_index"] == 4 and record["num_slices"] == 9


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_input_gets_message_and_server_keeps_answering(client, bad_files, tmp_path, name):
    data, filename, expected = bad_files[name]
    path = tmp_path / filename
    path.write_bytes(data)
    for endpoint in ("/predict", "/analyse"):
        with pytest.raises(AppError) as caught:
            client.predict(handle_file(str(path)), api_name=endpoint)
        assert expected.lower() in str(caught.value).lower()
    assert_four_labels(client.predict(handle_file(str(EXAMPLE)), api_name="/predict"))


@pytest.mark.parametrize("mode", ["L", "RGBA", "I;16"])
def test_odd_but_valid_images_answered(client, tmp_path, mode):
    arr = np.zeros((64, 64), dtype=np.uint16 if mode == "I;16" else np.uint8)
    image = Image.fromarray(arr) if mode != "RGBA" else Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    path = tmp_path / "odd.png"
    image.save(path)
    assert_four_labels(client.predict(handle_file(str(path)), api_name="/predict"))


def _call_over_rest(api_url: str, endpoint: str, file_data: dict) -> tuple[str, dict | str]:
    """The README's curl recipe: POST /call/<endpoint> -> event id; GET it -> (event, data)."""
    with httpx.Client(timeout=300) as http:
        call = http.post(f"{api_url}/call/{endpoint}", json={"data": [file_data]})
        stream = http.get(f"{api_url}/call/{endpoint}/{call.json()['event_id']}").text
    event = [line[len("event: "):] for line in stream.splitlines() if line.startswith("event:")][-1]
    data = json.loads([line[len("data:"):] for line in stream.splitlines() if line.startswith("data:")][-1])
    return event, data


def _upload_and_call(api_url: str, endpoint: str, scan: Path) -> dict:
    with httpx.Client(timeout=300) as http, open(scan, "rb") as handle:
        path = http.post(f"{api_url}/upload", files={"files": (scan.name, handle, "image/jpeg")}).json()[0]
    event, data = _call_over_rest(api_url, endpoint, {"path": path, "meta": {"_type": "gradio.FileData"}})
    assert event == "complete", data
    return data[0]


def test_analyse_over_plain_http(server):
    record = _upload_and_call(server.url + "gradio_api", "analyse", EXAMPLE)
    assert RECORD_KEYS <= set(record)


@pytest.mark.parametrize("path", ["/etc/hostname", "/no/such/file.jpg", "../../../../etc/hostname"])
def test_api_reads_only_uploaded_files(server, path):
    # gr.api hands a file dict to the function as it came (a script can leave out "meta", which is
    # what makes Gradio check the path), so the app itself refuses any path outside its uploads,
    # with one message whether or not the file exists.
    for endpoint in ("predict", "analyse"):
        event, data = _call_over_rest(server.url + "gradio_api", endpoint, {"path": path})
        assert event == "error" and "not a file uploaded to this server" in data["error"]
        assert "hostname" not in data["error"] and "/no/such" not in data["error"]


def test_100_concurrent_requests_all_answered(server):
    # 100 requests, 16 in flight at once from 16 threads, each with its own connections; the
    # server's queue runs them two at a time (default_concurrency_limit=2). Plain HTTP, not
    # gradio_client: its one shared event stream per client was sometimes reset under this
    # burst on a 2-core machine, which cancelled every pending job of that client at once.
    started = time.time()
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda _: _upload_and_call(server.url + "gradio_api", "predict", EXAMPLE), range(100)))
    assert len(results) == 100
    for result in results:
        assert_four_labels(result)
    print(f"100 concurrent /predict requests answered in {time.time() - started:.1f} s")


def test_a_compiled_server_answers_as_the_eager_one(server, tmp_path_factory):
    # The same tiny model (same seed) served compiled, as a Space serves its default model, against
    # the module's eager server. Eight requests, two at a time on the compiled backbone.
    compiled = start_app(tmp_path_factory, "app-compiled", BRAIN_TUMOR_COMPILE="1")
    try:
        deadline = time.time() + 180  # the server answers at once, eager, while it compiles in a thread
        while "compiled for answering in" not in compiled.log.read_text() and time.time() < deadline:
            time.sleep(1)
        eager_answer = _upload_and_call(server.url + "gradio_api", "predict", EXAMPLE)
        with ThreadPoolExecutor(max_workers=2) as pool:
            answers = list(pool.map(lambda _: _upload_and_call(compiled.url + "gradio_api", "predict", EXAMPLE),
                                    range(8)))
    finally:
        stop_app(compiled)
    log = compiled.log.read_text()
    assert "Default model model: eager, compiling for answering in the background" in log
    assert "default model model compiled for answering in" in log
    assert "Default model model: eager\n" in server.log.read_text()
    for answer in answers:
        assert answer == pytest.approx(eager_answer, abs=1e-5)


def test_uploads_are_not_kept(server, client, tmp_path):
    probe = tmp_path / "privacy_probe_4711.png"
    Image.open(EXAMPLE).save(probe)
    client.predict(handle_file(str(probe)), api_name="/predict")
    client.predict(handle_file(str(make_food_photo(tmp_path / "privacy_probe_4712.jpg"))), api_name="/analyse")
    left = [p.name for p in server.cache.rglob("*") if p.is_file()]
    assert not {"privacy_probe_4711.png", "privacy_probe_4712.jpg"} & set(left)
    example_names = {p.name for p in (ROOT / "examples").iterdir()}
    assert set(left) <= example_names, left  # only the gallery's own copies stay


def test_page_shows_notice_no_flagging_and_no_model_switcher_by_default(server):
    with urllib.request.urlopen(server.url + "config", timeout=10) as response:
        config = json.loads(response.read())
    text = json.dumps(config)
    assert "not for diagnosis" in text or "do not use it for diagnosis" in text
    assert "nothing is stored" in text and "flagging is off" in text
    types = {c.get("type") for c in config["components"]}
    assert "flag" not in types and "dropdown" not in types and "textbox" not in types
    assert "Switching models is off" in text
    assert str(server.root) not in text  # the model's folder is never shown


# --- UI handlers in-process --------------------------------------------------------------------


@pytest.fixture(scope="module")
def app_module(tmp_path_factory):
    root = tmp_path_factory.mktemp("inproc")
    other = save_tiny_model(root / "other-model", "convnext")
    (root / "other-model" / "localization.json").write_text(json.dumps({
        "method": "Grad-CAM", "split": "clean_test", "pointing_game": 0.29, "pointing_game_strict": 0.13,
        "mass_in_mask": 0.05, "centre_baseline_pointing_game": 0.47}))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BRAIN_TUMOR_MODEL", save_tiny_model(root / "model"))
        patch.setenv("BRAIN_TUMOR_ALLOWED_MODELS", f"{other}, {root / 'missing-model'}")
        patch.setenv("GRADIO_TEMP_DIR", str(root / "cache"))
        sys.path.insert(0, str(ROOT))
        sys.modules.pop("app", None)
        module = importlib.import_module("app")
        yield module
        sys.modules.pop("app", None)
        sys.path.remove(str(ROOT))


def _as_upload(app_module, name: str, data: bytes) -> dict:
    folder = app_module.UPLOADS.upload_dir / "fake-upload-hash"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    return {"path": str(folder / name), "orig_name": name}


def test_ui_volume_gets_slider_and_upload_deleted(app_module, tmp_path):
    volume = np.zeros((64, 64, 11), dtype=np.int16)
    volume[10:54, 8:56, :] = 300
    nib.save(nib.Nifti1Image(volume, np.eye(4)), str(tmp_path / "v.nii.gz"))
    payload = _as_upload(app_module, "v.nii.gz", (tmp_path / "v.nii.gz").read_bytes())
    stored, slider, preview, result, probabilities, heatmap, caption, verdict = app_module.analyse_upload(payload, None)
    assert not Path(payload["path"]).exists()  # deleted once read
    assert slider.visible and slider.maximum == 10 and slider.value == 5
    assert sorted(probabilities) == sorted(CLASS_NAMES) and heatmap is not None
    assert "slice 6 of 11" in verdict
    outputs = app_module.show_slice(stored, 0, None)
    assert "slice 1 of 11" in outputs[-1]
    assert "expired" in app_module.show_slice(None, 0, None)[-1]


def test_ui_bad_file_explained(app_module):
    payload = _as_upload(app_module, "notes.jpg", b"just some text\n" * 10)
    stored, slider, preview, result, probabilities, heatmap, caption, verdict = app_module.analyse_upload(payload, None)
    assert stored is None and probabilities is None and result.visible is False
    assert "Cannot read this file" in verdict and "contains text" in verdict


def test_ui_not_mri_folds_probabilities_away(app_module, tmp_path):
    payload = _as_upload(app_module, "pizza.jpg", make_food_photo(tmp_path / "pizza.jpg").read_bytes())
    stored, slider, preview, result, probabilities, heatmap, caption, verdict = app_module.analyse_upload(payload, None)
    assert result.open is False and result.label == app_module.RAW_LABEL
    assert sorted(probabilities) == sorted(CLASS_NAMES)  # still there, behind the closed accordion
    assert caption == "" and "does not look like a brain MRI slice" in verdict and "in colour" in verdict
    payload = _as_upload(app_module, "g.jpg", EXAMPLE.read_bytes())
    stored, slider, preview, result, probabilities, heatmap, caption, verdict = app_module.analyse_upload(payload, None)
    assert result.open is True and result.label == app_module.RESULT_LABEL and "heat map" in caption.lower()


def test_ui_model_switch_only_among_allowed(app_module):
    models = app_module.MODELS
    assert models.switchable and models.names == ["model", "other-model", "missing-model"]
    assert models.default_name == "model"
    assert app_module.model_status("other-model").startswith("Model `other-model`")
    payload = _as_upload(app_module, "g.jpg", EXAMPLE.read_bytes())
    stored, slider, preview, result, probabilities, heatmap, caption, verdict = app_module.analyse_upload(
        payload, "other-model")
    assert heatmap is not None and result.visible  # this session now uses the other model
    label = max(probabilities, key=probabilities.get)
    # The caption carries that model's localization.json figures (or, for "notumor", says what the map is).
    assert ("29%" in caption and "47%" in caption) if label != "notumor" else ("no tumour" in caption)
    for name in ("/etc", "/tmp", "../models", "facebook/convnext-tiny-224"):
        status = app_module.model_status(name)
        assert "not an allowed model" in status and name not in status
    status = app_module.model_status("missing-model")
    assert "could not be loaded" in status and "/" not in status
