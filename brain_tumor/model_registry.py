"""The models a server may load: one pinned default, plus an operator's allow-list, a few kept (LRU).

A public deployment must not load whatever a visitor types: that would let strangers fill memory
and disk, probe which paths exist on the server, and push the default model out of the cache for
everybody. So visitors never name a model. They pick one of the names the operator listed (a Hub
id, or a folder shown only by its last component), and anything else is "not an allowed model",
whatever it is. The default model is held outside the LRU, so no sequence of requests evicts it.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .checks.storage import find_model_file
from .modeling import ModelLoadError

log = logging.getLogger(__name__)

LOCALIZATION_FILE = "localization.json"  # written beside the model by the localization benchmark


class ModelNotAllowed(ModelLoadError):
    """A visitor asked for a model the operator did not list."""


@dataclass
class ServedModel:
    name: str  # what visitors see: a Hub id, or a folder's last component
    predictor: object  # brain_tumor.inference.Predictor
    localization: dict | None  # the benchmark's figures for the heat map, when the folder has them


def parse_allowed(value: str | None) -> list[str]:
    """`BRAIN_TUMOR_ALLOWED_MODELS`: comma-separated Hub ids or folders; empty or unset = none."""
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def is_folder(source: str) -> bool:
    return Path(source).expanduser().is_dir() or source.startswith((".", "/", "~")) or "\\" in source


def public_name(source: str) -> str:
    """The name a visitor sees: a Hub id as written, a folder by its last component only."""
    return (Path(source.rstrip("/\\")).name or source) if is_folder(source) else source


def read_localization(source: str) -> dict | None:
    """The model's `localization.json` (a folder, or a Hub repo already cached), or None."""
    try:
        path = find_model_file(source, LOCALIZATION_FILE)
        figures = json.loads(Path(path).read_text()) if path else None
    except Exception as error:  # unreadable: the caption says the map is not validated
        log.info("no localization figures for %s: %s", source, error)
        return None
    return figures if isinstance(figures, dict) else None


def _load_predictor(source: str):
    from .inference import Predictor

    return Predictor.from_pretrained(source)


def parse_switch(value: str | None, default: bool) -> bool:
    """An on/off environment variable, read by transformers' `strtobool` (1, true, yes, on / 0, false,
    no, off); unset or empty, the default."""
    from transformers.utils import strtobool

    text = (value or "").strip()
    if not text:
        return default
    try:
        return bool(strtobool(text))
    except ValueError:
        raise ValueError(f"Expected one of 0/1, false/true, no/yes, off/on, got {value!r}.") from None


class ModelRegistry:
    """Name -> loaded model, for the default and the allow-listed models only.

    `load(source)` turns a source (Hub id or folder) into a predictor. With `compile_default`, the
    default model is compiled for answering in a thread (`compiling`) as the server starts: tens of
    seconds on a 2-core CPU, during which it answers eager, then every answer without a heat map is
    sooner. A model a visitor switches to is served eager, since compiling it would keep them waiting.
    """

    def __init__(self, default: str, allowed=(), keep: int = 2, load: Callable[[str], object] = _load_predictor,
                 compile_default: bool = False):
        self._load, self.keep = load, keep
        self.sources: dict[str, str] = {}  # public name -> source, the default first
        for source in [default, *allowed]:
            if source in self.sources.values():
                continue
            name, n = public_name(source), 2
            while name in self.sources:  # two folders with the same last component
                name, n = f"{public_name(source)} ({n})", n + 1
            self.sources[name] = source
        self.default_name = next(iter(self.sources))
        self._default: ServedModel | None = None
        self._others: OrderedDict[str, ServedModel] = OrderedDict()
        self._lock, self._load_lock = threading.Lock(), threading.Lock()
        self.start_error: str | None = None
        try:
            self._default = self._build(self.default_name)
        except ModelLoadError as error:  # keep serving: the page says the model is missing
            self.start_error = str(error)
        self.compiling: threading.Thread | None = None
        if compile_default and self._default is not None:
            self.compiling = threading.Thread(target=self._compile_default, name="compile-default-model", daemon=True)
            self.compiling.start()

    def _compile_default(self) -> None:
        predictor = self._default.predictor
        if predictor.compile_for_answering():
            log.info("default model %s compiled for answering in %.0f s", self.default_name, predictor.compile_seconds)

    @property
    def names(self) -> list[str]:
        return list(self.sources)

    @property
    def switchable(self) -> bool:
        return len(self.sources) > 1

    def get(self, name: str | None = None) -> ServedModel:
        """The model a visitor picked (None: the default). Raises ModelLoadError, never naming a path."""
        name = name or self.default_name
        if name not in self.sources:
            raise ModelNotAllowed(f"That is not an allowed model. Allowed: {', '.join(self.sources)}.")
        if name == self.default_name:
            if self._default is None:
                raise ModelLoadError(f"The model {name} could not be loaded when the server started; see its log.")
            return self._default
        with self._lock:
            if name in self._others:
                self._others.move_to_end(name)
                return self._others[name]
        # Loading (maybe a Hub download) happens outside the lock, so requests on models already
        # loaded never wait for it; one load at a time keeps memory bounded.
        with self._load_lock:
            with self._lock:
                if name in self._others:
                    return self._others[name]
            served = self._build(name)
            with self._lock:
                self._others[name] = served
                while len(self._others) > self.keep:
                    self._others.popitem(last=False)  # the least recently used; never the default
            return served

    def _build(self, name: str) -> ServedModel:
        source = self.sources[name]
        try:
            predictor = self._load(source)
        except ModelLoadError as error:
            # The detailed message names the source, which may be a server path: log it for the
            # operator, tell the visitor only the public name.
            log.warning("could not load model %s: %s", source, error)
            raise ModelLoadError(f"The model {name} could not be loaded; the server's log says why.") from None
        return ServedModel(name=name, predictor=predictor, localization=read_localization(source))
