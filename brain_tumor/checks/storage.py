"""Where a model folder keeps its fitted checks, and which checks apply when it has none.

Layout: the small, readable part (image-statistics ranges, uncertainty thresholds, feature-
distance thresholds) lives in config.json under `brain_tumor_checks`; the feature-distance arrays
(PCA centre and components, class means, precision: ~100 KB for a 256-dim model) live in
`checks.safetensors` beside the weights, named by a pointer in config.json. Older folders that
carry the arrays inline in config.json still load. A folder without fitted checks, or whose
config points to a missing `checks.safetensors`, falls back to `DEFAULT_CHECKS` for what it lacks.

In memory the checks are one plain JSON-ready dict (arrays as lists), as the fitting code returns it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import EntryNotFoundError
from safetensors.numpy import load_file, save

from .feature_distance import ARRAY_KEYS
from .image_statistics import DEFAULT_RANGES
from .uncertainty import DEFAULT_THRESHOLDS

logger = logging.getLogger(__name__)

CHECKS_VERSION = 1
CHECKS_FILE = "checks.safetensors"
CONFIG_KEY = "brain_tumor_checks"
_POINTER = "arrays_file"  # the key, inside feature_distance in config.json, naming CHECKS_FILE

DEFAULT_CHECKS = {
    "version": CHECKS_VERSION,
    "source": "defaults: image-statistics ranges from the Training split; conventional uncertainty thresholds",
    "image_statistics": {"ranges": DEFAULT_RANGES},
    "uncertainty": DEFAULT_THRESHOLDS,
    "feature_distance": None,
    "tumour_threshold": None,  # off: only a fitted level means anything
}


def resolve_checks(stored: dict | None) -> dict:
    """The checks a model uses: its fitted ones, with defaults for any part it lacks."""
    checks = dict(DEFAULT_CHECKS)
    for key, value in (stored or {}).items():
        if value is not None or key not in checks:
            checks[key] = value
    distance = checks.get("feature_distance")
    if distance and not set(ARRAY_KEYS) <= set(distance):
        checks["feature_distance"] = None  # a config.json read without its checks.safetensors
    return checks


def save_checks(checks: dict, folder) -> dict:
    """Store fitted checks in a saved model folder (call after `save_pretrained`).

    Writes the feature-distance arrays to `folder/checks.safetensors` and the rest, with a pointer
    to that file, into `folder/config.json`; returns what config.json now holds under
    `brain_tumor_checks`. Other keys of config.json are left as they are.
    """
    folder = Path(folder)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{folder} has no config.json: save the model (save_pretrained) before its checks")
    small, arrays = _split(checks)
    if arrays:
        # Bytes written by Python, so the file gets the usual permissions (save_file makes it owner-only).
        (folder / CHECKS_FILE).write_bytes(save(arrays, metadata={"format": "np", CONFIG_KEY: str(CHECKS_VERSION)}))
    else:
        (folder / CHECKS_FILE).unlink(missing_ok=True)  # no stale arrays from an earlier fit
    config = json.loads(config_path.read_text())
    config[CONFIG_KEY] = small
    # The format transformers' save_pretrained writes, so the file diffs cleanly.
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return small


def load_checks(model_id_or_folder: str, config) -> dict | None:
    """The fitted checks of a model (None if it has none), arrays read from `checks.safetensors`.

    `model_id_or_folder` is what the model was loaded from: a local folder or a Hub id (the file
    is then fetched with `hf_hub_download`, which reads the local cache when offline).
    """
    stored = getattr(config, CONFIG_KEY, None)
    if not stored:
        return None
    distance = stored.get("feature_distance")
    if not distance or _POINTER not in distance:
        return stored  # no feature distance fitted, or an older folder with the arrays inline
    path = find_model_file(str(model_id_or_folder), distance[_POINTER])
    if path is None:
        logger.warning("%s: config.json names %s but the file is missing; the feature-distance check is off.",
                       model_id_or_folder, distance[_POINTER])
        return {**stored, "feature_distance": None}
    arrays = load_file(path)
    loaded = {key: arrays[f"feature_distance.{key}"].tolist() for key in ARRAY_KEYS}
    scalars = {key: value for key, value in distance.items() if key != _POINTER}
    return {**stored, "feature_distance": {**scalars, **loaded}}


def _split(checks: dict) -> tuple[dict, dict[str, np.ndarray]]:
    """(what goes into config.json, the arrays for checks.safetensors)."""
    distance = checks.get("feature_distance")
    if not distance:
        return dict(checks), {}
    missing = [key for key in ARRAY_KEYS if key not in distance]
    if missing:
        raise ValueError(f"feature_distance lacks its fitted arrays {missing}: pass the checks as fitted "
                         "(fit_checks) or as loaded (load_checks), not config.json's entry alone")
    # float64: the values exactly as fitted, so saving and loading changes no score.
    arrays = {f"feature_distance.{key}": np.asarray(distance[key], dtype=np.float64) for key in ARRAY_KEYS}
    scalars = {key: value for key, value in distance.items() if key not in ARRAY_KEYS}
    return {**checks, "feature_distance": {**scalars, _POINTER: CHECKS_FILE}}, arrays


def find_model_file(model_id_or_folder: str, filename: str) -> str | None:
    """A file beside a model: in its folder, or from its Hub repo (the cache when offline); None if absent."""
    folder = Path(model_id_or_folder).expanduser()
    if folder.is_dir():
        path = folder / filename
        return str(path) if path.is_file() else None
    try:
        return hf_hub_download(model_id_or_folder, filename)
    except (EntryNotFoundError, OSError):  # not in the repo, or offline and not cached
        return None
