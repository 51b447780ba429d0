"""The one exception every reader raises, and the sentence that tells the user what is accepted.

Every refusal is a `ScanError` (a ValueError) whose message says what was wrong and what is
accepted, because these messages go straight to the person who uploaded the file.
"""

from __future__ import annotations

ACCEPTED = "JPEG, PNG, BMP, TIFF, DICOM (.dcm) or NIfTI (.nii, .nii.gz)"


class ScanError(ValueError):
    """The file cannot be read as a 2-D scan slice; the message is meant for the user."""


def first_line(error: Exception) -> str:
    """The first line of a library's error, to quote in a user message without a traceback."""
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
