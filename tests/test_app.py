"""The app as users and clients meet it: `python app.py` in a subprocess on a free loopback port,
driven through gradio_client; plus the UI handlers called in-process."""

import importlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import httpx
import nibabel as nib
import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from helpers_models import save_tiny_model
from PIL import Image
from test_imaging import BAD_NAMES, bad_files  # noqa: F401  (a fixture, shared with the format tests)

from brain_tumor.labels import CLASS_NAMES

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "glioma_Te-gl_0010.jpg"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_app(tmp_path_factory, name: str) -> SimpleNamespace:
    """Run `python app.py` with a tiny model; wait until it answers HTTP (or fail with its log)."""
    root = tmp_path_factory.mktemp(name)
    port = free_port()
    env = dict(
        os.environ,
        BRAIN_TUMOR_MODEL=save_tiny_model(root / "model"),
        GRADIO_SERVER_NAME="127.0.0.1",
        GRADIO_SERVER_PORT=str(port),
        GRADIO_TEMP_DIR=str(root / "gradio-cache"),
        GRADIO_ANALYTICS_ENABLED="False",
        HF_HUB_OFFLINE="1",
    )
    log = open(root / "app.log", "w")
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 180
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"app.py exited with {proc.returncode}:\n{(root / 'app.log').read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail(f"app.py did not answer within 180 s:\n{(root / 'app.log').read_text()[-3000:]}")
    return SimpleNamespace(url=url, proc=proc, cache=root / "gradio-cache", log=root / "app.log", root=root)


def stop_app(server) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.proc.kill()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_app(tmp_path_factory, "app")
    yield server
    stop_app(server)


@pytest.fixture(scope="module")
def client(server):
    return Client(server.url, verbose=False, download_files=False)


def assert_four_labels(result):
    assert isinstance(result, dict) and sorted(result) == sorted(CLASS_NAMES)
    assert sum(result.values()) == pytest.approx(1.0, abs=1e-4)


def test_predict_endpoint_returns_label_dict(client):
    assert "/predict" in client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert_four_labels(client.predict(handle_file(str(EXAMPLE)), api_name="/predict"))


EXAMPLE_FILES = [p for p in sorted((ROOT / "examples").iterdir()) if p.suffix in (".jpg", ".dcm", ".gz")]


@pytest.mark.parametrize("example", EXAMPLE_FILES, ids=lambda p: p.name)
def test_every_example_is_answered(client, example):
    assert_four_labels(client.predict(handle_file(str(example)), api_name="/predict"))


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_input_gets_message_and_server_keeps_answering(client, bad_files, tmp_path, name):  # noqa: F811
    data, filename, expected = bad_files[name]
    path = tmp_path / filename
    path.write_bytes(data)
    with pytest.raises(AppError) as caught:
        client.predict(handle_file(str(path)), api_name="/predict")
    assert expected.lower() in str(caught.value).lower()
    assert_four_labels(client.predict(handle_file(str(EXAMPLE)), api_name="/predict"))


@pytest.mark.parametrize("mode", ["L", "RGBA", "I;16"])
def test_odd_but_valid_images_answered(client, tmp_path, mode):
    arr = np.zeros((64, 64), dtype=np.uint16 if mode == "I;16" else np.uint8)
    image = Image.fromarray(arr) if mode != "RGBA" else Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    path = tmp_path / "odd.png"
    image.save(path)
    assert_four_labels(client.predict(handle_file(str(path)), api_name="/predict"))


def _predict_over_rest(api_url: str, scan: Path) -> dict:
    """One request the way `curl` users make it: upload, call /predict, read the event stream."""
    with httpx.Client(timeout=300) as http:
        with open(scan, "rb") as handle:
            path = http.post(f"{api_url}/upload", files={"files": (scan.name, handle, "image/jpeg")}).json()[0]
        call = http.post(f"{api_url}/call/predict", json={"data": [{"path": path, "meta": {"_type": "gradio.FileData"}}]})
        stream = http.get(f"{api_url}/call/predict/{call.json()['event_id']}").text
    assert "event: complete" in stream, stream[-500:]
    data = [line[len("data:"):] for line in stream.splitlines() if line.startswith("data:")]
    return json.loads(data[-1])[0]


def test_100_concurrent_requests_all_answered(server):
    # 100 requests, 16 in flight at once from 16 threads, each with its own connections; the
    # server's queue runs them two at a time (default_concurrency_limit=2). Plain HTTP, not
    # gradio_client: its one shared event stream per client was sometimes reset under this
    # burst on a 2-core machine, which cancelled every pending job of that client at once.
    started = time.time()
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda _: _predict_over_rest(server.url + "gradio_api", EXAMPLE), range(100)))
    assert len(results) == 100
    for result in results:
        assert_four_labels(result)
    print(f"100 concurrent /predict requests answered in {time.time() - started:.1f} s")


def test_uploads_are_not_kept(server, client, tmp_path):
    probe = tmp_path / "privacy_probe_4711.png"
    Image.open(EXAMPLE).save(probe)
    client.predict(handle_file(str(probe)), api_name="/predict")
    left = [p.name for p in server.cache.rglob("*") if p.is_file()]
    assert "privacy_probe_4711.png" not in left
    example_names = {p.name for p in (ROOT / "examples").iterdir()}
    assert set(left) <= example_names, left  # only the gallery's own copies stay


def test_page_shows_notice_and_no_flagging(server):
    with urllib.request.urlopen(server.url + "config", timeout=10) as response:
        config = json.loads(response.read())
    text = json.dumps(config)
    assert "not for diagnosis" in text or "do not use it for diagnosis" in text
    assert "nothing is stored" in text and "flagging is off" in text
    assert "flag" not in {c.get("type") for c in config["components"]}


# --- UI handlers in-process --------------------------------------------------------------------


@pytest.fixture(scope="module")
def app_module(tmp_path_factory):
    root = tmp_path_factory.mktemp("inproc")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BRAIN_TUMOR_MODEL", save_tiny_model(root / "model"))
        patch.setenv("GRADIO_TEMP_DIR", str(root / "cache"))
        sys.path.insert(0, str(ROOT))
        sys.modules.pop("app", None)
        module = importlib.import_module("app")
        yield module
        sys.modules.pop("app", None)
        sys.path.remove(str(ROOT))


def _as_upload(app_module, name: str, data: bytes) -> dict:
    folder = app_module.UPLOAD_DIR / "fake-upload-hash"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    return {"path": str(folder / name), "orig_name": name}


def test_ui_volume_gets_slider_and_upload_deleted(app_module, tmp_path):
    volume = np.zeros((64, 64, 11), dtype=np.int16)
    volume[10:54, 8:56, :] = 300
    nib.save(nib.Nifti1Image(volume, np.eye(4)), str(tmp_path / "v.nii.gz"))
    payload = _as_upload(app_module, "v.nii.gz", (tmp_path / "v.nii.gz").read_bytes())
    stored, slider, preview, probabilities, heatmap, verdict = app_module.analyse(payload, app_module.START_MODEL)
    assert not Path(payload["path"]).exists()  # deleted once read
    assert slider.visible and slider.maximum == 10 and slider.value == 5
    assert sorted(probabilities) == sorted(CLASS_NAMES) and heatmap is not None
    assert "slice 6 of 11" in verdict
    slider, preview, probabilities, heatmap, verdict = app_module.show_slice(stored, 0, app_module.START_MODEL)
    assert "slice 1 of 11" in verdict


def test_ui_bad_file_explained(app_module):
    payload = _as_upload(app_module, "notes.jpg", b"just some text\n" * 10)
    stored, slider, preview, probabilities, heatmap, verdict = app_module.analyse(payload, app_module.START_MODEL)
    assert stored is None and probabilities is None
    assert "Cannot read this file" in verdict and "contains text" in verdict


def test_ui_model_switch(app_module, tmp_path):
    name, status = app_module.switch_model(str(tmp_path / "missing-model"))
    assert "Could not load that model" in status and "No model folder" in status
    other = save_tiny_model(tmp_path / "other", "convnext")
    name, status = app_module.switch_model(other)
    assert name == other and status.startswith("Model:")
    payload = _as_upload(app_module, "g.jpg", EXAMPLE.read_bytes())
    assert app_module.analyse(payload, other)[3] is not None  # this session now uses the other model
