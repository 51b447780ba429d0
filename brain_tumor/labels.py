"""Canonical class names and the spellings public brain-tumour datasets use for them.

The names live in the model config (`id2label`) once a model exists; this module only decides
what a *dataset folder or column* means, so every loader maps through `canonical_label`.
"""

import re

CLASS_NAMES = ("glioma", "meningioma", "notumor", "pituitary")

DESCRIPTIONS = {
    "glioma": "a tumour growing from the brain's glial (supporting) cells, often inside the brain tissue",
    "meningioma": "a tumour of the meninges, the membranes around the brain; usually benign and slow-growing",
    "notumor": "no tumour visible in this slice",
    "pituitary": "a tumour of the pituitary gland, at the base of the brain behind the nose",
}

# Spellings seen in public datasets (Kaggle, Hub mirrors, SARTAJ, Br35H), after normalisation:
# lower case, every run of non-letters turned into a single underscore.
_SYNONYMS = {
    "glioma": "glioma",
    "glioma_tumor": "glioma",
    "glioma_tumour": "glioma",
    "gliomas": "glioma",
    "meningioma": "meningioma",
    "meningioma_tumor": "meningioma",
    "meningioma_tumour": "meningioma",
    "meningiomas": "meningioma",
    "notumor": "notumor",
    "notumour": "notumor",
    "no_tumor": "notumor",
    "no_tumour": "notumor",
    "no": "notumor",
    "normal": "notumor",
    "healthy": "notumor",
    "pituitary": "pituitary",
    "pituitary_tumor": "pituitary",
    "pituitary_tumour": "pituitary",
    "pituitary_adenoma": "pituitary",
}


def canonical_label(name: str) -> str:
    """Map a class name as a dataset spells it to one of CLASS_NAMES, or raise ValueError."""
    key = re.sub(r"[^a-z]+", "_", str(name).strip().lower()).strip("_")
    if key in _SYNONYMS:
        return _SYNONYMS[key]
    raise ValueError(
        f"Unknown class name {name!r}. Expected one of {', '.join(CLASS_NAMES)} "
        f"(or a common spelling such as 'glioma_tumor', 'no_tumor', 'No Tumor')."
    )


def id2label() -> dict[int, str]:
    return dict(enumerate(CLASS_NAMES))


def label2id() -> dict[str, int]:
    return {name: i for i, name in enumerate(CLASS_NAMES)}
