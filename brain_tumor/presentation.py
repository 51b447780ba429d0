"""What a reader gets from a prediction: a JSON record for scripts, a caption for the heat map.

The caption states what the map is and how well it localizes tumours, with the figures that the
localization benchmark wrote beside the model (`localization.json`); a model without them is
said to be unchecked, never assumed to be good.
"""

from __future__ import annotations

import math

from .labels import canonical_label

# The benchmark's figures, all shares in 0..1 (see bench/ and the model card).
LOCALIZATION_KEYS = ("pointing_game", "pointing_game_strict", "mass_in_mask", "centre_baseline_pointing_game")
_SPLITS = {"official_test": "official test split", "clean_test": "clean test split"}


def api_record(prediction) -> dict:
    """The `/analyse` answer: JSON types only, reasons as a list (not-MRI reasons first)."""
    scan = prediction.scan
    return {
        "label": prediction.label,
        "probability": prediction.probability,
        "probabilities": dict(prediction.probabilities),
        "uncertain": prediction.uncertain,
        "not_mri": prediction.not_mri,
        "reasons": list(prediction.not_mri_reasons) + list(prediction.uncertain_reasons),
        "verdict": prediction.verdict,
        "slice_index": scan.slice_index if scan else None,
        "num_slices": scan.num_slices if scan else None,
    }


def _share(value) -> float | None:
    """A figure as a share in 0..1: a number, or a per-class table's "overall" entry."""
    if isinstance(value, dict):
        value = value.get("overall")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and 0 <= value <= 1:
        return float(value)
    return None


def heatmap_caption(label: str, localization: dict | None) -> str:
    """One paragraph under the heat map: what it shows, and how well it has been shown to localize."""
    figures = {key: _share((localization or {}).get(key)) for key in LOCALIZATION_KEYS}
    method = str((localization or {}).get("method") or "").strip()
    what = f"The heat map ({method})" if method else "The heat map"
    try:
        no_tumour = canonical_label(label) == "notumor"
    except ValueError:  # a model with other classes
        no_tumour = False
    if no_tumour:
        return (f"{what} shows what drove the answer \"no tumour\". It does not show a tumour, "
                "and its bright areas are not findings.")
    caption = f"{what} shows where the evidence for this answer lies in the slice; it is not a tumour outline. "
    if any(value is None for value in figures.values()):
        return caption + ("It has not been checked against tumour masks for this model, so do not read it as "
                          "showing where the tumour is.")
    split = str(localization.get("split") or "test split")
    split = _SPLITS.get(split, split.replace("_", " "))
    return caption + (
        f"Checked on expert tumour masks ({split}): its peak lands on the tumour in "
        f"{figures['pointing_game']:.0%} of slices ({figures['pointing_game_strict']:.0%} without the margin "
        f"around the mask; a map that always peaks at the image centre: "
        f"{figures['centre_baseline_pointing_game']:.0%}), and {figures['mass_in_mask']:.0%} of its weight "
        "lies inside the tumour."
    )
