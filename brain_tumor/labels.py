"""Canonical class names and the spellings public brain-tumour datasets use for them.

The names live in the model config (`id2label`) once a model exists; this module only decides
what a *dataset folder or column* means, so every loader maps through `canonical_label`.
"""

import re

CLASS_NAMES = ("glioma", "meningioma", "notumor", "pituitary")
TUMOR_CLASSES = ("glioma", "meningioma", "pituitary")
# A coarse label: "some tumour, type unknown" (Br35H's `yes/`). Datasets may carry it; models never
# predict it (their head stays four classes). Training treats it as the set TUMOR_CLASSES.
ANY_TUMOR = "tumor"
DATASET_LABELS = CLASS_NAMES + (ANY_TUMOR,)
ANY_TUMOR_ID = DATASET_LABELS.index(ANY_TUMOR)
NOTUMOR_ID = CLASS_NAMES.index("notumor")

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
    "yes": ANY_TUMOR,
    "tumor": ANY_TUMOR,
    "tumour": ANY_TUMOR,
    "tumors": ANY_TUMOR,
    "brain_tumor": ANY_TUMOR,
}


def canonical_label(name: str, allow_coarse: bool = False) -> str:
    """Map a class name as a dataset spells it to one of CLASS_NAMES, or raise ValueError.

    With `allow_coarse`, "yes" / "tumor" (type unknown) map to ANY_TUMOR, for training data."""
    key = re.sub(r"[^a-z]+", "_", str(name).strip().lower()).strip("_")
    label = _SYNONYMS.get(key)
    if label is not None and (allow_coarse or label != ANY_TUMOR):
        return label
    coarse = f", or {ANY_TUMOR!r} / 'yes' for a tumour of unknown type" if allow_coarse else ""
    raise ValueError(
        f"Unknown class name {name!r}. Expected one of {', '.join(CLASS_NAMES)} "
        f"(or a common spelling such as 'glioma_tumor', 'no_tumor', 'No Tumor'){coarse}."
    )


def allowed_classes(dataset_label: int) -> tuple[int, ...]:
    """The class ids a DATASET_LABELS id allows: itself, or every tumour class for ANY_TUMOR."""
    name = DATASET_LABELS[dataset_label]
    names = TUMOR_CLASSES if name == ANY_TUMOR else (name,)
    return tuple(CLASS_NAMES.index(n) for n in names)


def id2label() -> dict[int, str]:
    return dict(enumerate(CLASS_NAMES))


def label2id() -> dict[str, int]:
    return {name: i for i, name in enumerate(CLASS_NAMES)}
