"""Brain-tumour MRI slice classifier: data, training parts and inference, built on transformers.

Research use only; not a medical device and not for diagnosis.
"""

from pathlib import Path

from .labels import CLASS_NAMES, canonical_label

# The embedded default model, trained in this repository (see its model card for how).
DEFAULT_MODEL = str(Path(__file__).resolve().parent.parent / "models" / "brain-tumor-mri-classifier")

__all__ = ["CLASS_NAMES", "DEFAULT_MODEL", "canonical_label"]
