"""Starting and stopping the real app server for tests (shared by test_app.py and test_browser.py)."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from helpers_models import save_tiny_model
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def make_food_photo(path: Path) -> Path:
    """A colourful photo-like picture (a plate with tomato, cheese and basil on a light table)."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:256, 0:256]
    image = np.zeros((256, 256, 3)) + [235, 225, 210]
    for cx, cy, r, colour in [(90, 100, 50, (200, 40, 30)), (170, 150, 60, (240, 190, 40)), (120, 190, 35, (60, 150, 50))]:
        image[(x - cx) ** 2 + (y - cy) ** 2 < r**2] = colour
    Image.fromarray(np.clip(image + rng.normal(0, 10, image.shape), 0, 255).astype(np.uint8)).save(path)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_app(tmp_path_factory, name: str, localization: dict | None = None, **env_extra) -> SimpleNamespace:
    """Run `python app.py` with a tiny model (and its localization.json, if given); wait until it
    answers HTTP (or fail with its log). env_extra: more environment variables."""
    root = tmp_path_factory.mktemp(name)
    port = free_port()
    model = save_tiny_model(root / "model")
    if localization is not None:
        (root / "model" / "localization.json").write_text(json.dumps(localization))
    env = {key: value for key, value in os.environ.items() if key != "BRAIN_TUMOR_ALLOWED_MODELS"}
    env.update(
        BRAIN_TUMOR_MODEL=model,
        GRADIO_SERVER_NAME="127.0.0.1",
        GRADIO_SERVER_PORT=str(port),
        GRADIO_TEMP_DIR=str(root / "gradio-cache"),
        GRADIO_ANALYTICS_ENABLED="False",
        HF_HUB_OFFLINE="1",
        **env_extra,
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
