"""DICOM grayscale display: Modality LUT, then VOI LUT (window or lookup table), onto 0..255.

Both steps are pydicom's own: `apply_modality_lut` (Rescale Slope/Intercept or a Modality LUT)
and `apply_voi_lut` (a VOI LUT Sequence, else Window Center/Width with the LINEAR, LINEAR_EXACT
or SIGMOID function; PS3.3 C.11.2). pydicom leaves the result in the VOI's own output range,
which we map onto 8 bits. Both steps work pixel by pixel, so they run a block of rows at a time.
"""

from __future__ import annotations

import numpy as np

from .pixels import map_row_blocks, unit_to_uint8

# What pydicom raises for a VOI it cannot apply (width < 1, odd LUT depth, colour data, bad values).
_VOI_ERRORS = (ValueError, TypeError, IndexError, KeyError, AttributeError, NotImplementedError)


def voi_to_uint8(arr: np.ndarray, ds, notes: list[str]) -> np.ndarray | None:
    """The frame through the file's Modality and VOI transforms; None when it has no usable VOI."""
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    try:
        found = _voi_output_range(ds)
        if found is None:
            return None
        note, low, high = found
        if not (np.isfinite(low) and np.isfinite(high)) or low == high:
            return None

        def display(block: np.ndarray) -> np.ndarray:
            return unit_to_uint8((apply_voi_lut(apply_modality_lut(block, ds), ds) - low) / (high - low))

        gray = map_row_blocks(arr, display)
    except _VOI_ERRORS:
        return None
    notes.append(note)
    return gray


def _voi_output_range(ds) -> tuple[str, float, float] | None:
    """What apply_voi_lut will do (as a note) and its output range; None when the file has no VOI."""
    from pydicom.pixels import apply_voi_lut

    lut = ds.get("VOILUTSequence")
    # apply_voi_lut prefers a complete VOI LUT; its entries span 0 .. 2^bits - 1 (PS3.3 C.11.2.1.1).
    if lut and lut[0].get("LUTDescriptor") is not None and lut[0].get("LUTData") is not None:
        return "VOI LUT applied", 0.0, 2.0 ** int(lut[0].LUTDescriptor[2]) - 1
    centre, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    if centre in (None, "") or width in (None, ""):
        return None
    # Input far below / above any window lands on the window's floor / ceiling.
    low, high = apply_voi_lut(np.array([-np.inf, np.inf]), ds)
    function = str(ds.get("VOILUTFunction", "LINEAR")).upper()
    note = f"window centre {_first(centre):g} / width {_first(width):g} applied"
    return (note if function == "LINEAR" else f"{note} ({function})"), float(low), float(high)


def _first(value) -> float:
    # Both may be multi-valued (several suggested windows): the first is the default, as in apply_voi_lut.
    from pydicom.multival import MultiValue

    return float(value[0] if isinstance(value, MultiValue) else value)
