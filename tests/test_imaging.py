"""load_slice, the front door of brain_tumor.imaging: paths or bytes in, one slice or a clear refusal out.

The format readers have their own files (test_imaging_raster/_dicom/_nifti/_sniff), the shared
limits theirs (test_imaging_limits). The bad-input matrix lives in imaging_samples.py; `bad_files`
is a conftest fixture.
"""

import numpy as np
import pytest
from imaging_samples import BAD_NAMES, head_phantom, save_pil, write_nifti  # noqa: F401
from PIL import Image

from brain_tumor import imaging
from brain_tumor.imaging import LoadedScan, ScanError, load_slice


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_input_refused_with_clear_message(bad_files, tmp_path, name):
    data, filename, expected = bad_files[name]
    path = tmp_path / filename
    path.write_bytes(data)
    with pytest.raises(ScanError) as caught:
        load_slice(path)
    message = str(caught.value)
    assert expected.lower() in message.lower(), message
    assert len(message) < 400 and "Traceback" not in message


def test_bad_input_message_lists_accepted_formats(bad_files):
    with pytest.raises(ScanError, match="JPEG, PNG, BMP, TIFF, DICOM"):
        load_slice(bad_files["zip"][0])


def test_path_and_bytes_give_the_same_slice(tmp_path):
    path = save_pil(tmp_path / "scan.png", Image.fromarray(head_phantom().astype(np.uint8)))
    from_path, from_bytes = load_slice(path), load_slice(path.read_bytes())
    assert isinstance(from_path, LoadedScan)
    assert np.array_equal(np.asarray(from_path.image), np.asarray(from_bytes.image))
    with pytest.raises(TypeError, match="path or bytes"):
        load_slice(12)


def test_slice_index_out_of_range(tmp_path):
    path = write_nifti(tmp_path / "v.nii", np.zeros((40, 40, 5), dtype=np.int16))
    with pytest.raises(ScanError, match="5 slices .*slice 9 does not exist"):
        load_slice(path, slice_index=9)


def test_slice_index_ignored_for_2d_images(tmp_path):
    path = save_pil(tmp_path / "flat.png", Image.fromarray(head_phantom().astype(np.uint8)))
    assert load_slice(path, slice_index=7).slice_index == 0


def test_file_size_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(imaging.limits, "MAX_FILE_BYTES", 1000)
    path = save_pil(tmp_path / "x.bmp", Image.new("L", (100, 100)))
    with pytest.raises(ScanError, match="limit"):
        load_slice(path)
    with pytest.raises(ScanError, match="limit"):
        load_slice(path.read_bytes())


def test_missing_path():
    with pytest.raises(ScanError, match="No file"):
        load_slice("/no/such/file.png")


def test_public_names_stay_importable():
    # app.py, inference.py and cli/predict.py import these from the package itself.
    from brain_tumor.imaging import ACCEPTED, MAX_FILE_BYTES, _to_gray_or_rgb, to_gray_or_rgb

    assert "NIfTI" in ACCEPTED and MAX_FILE_BYTES == 100 * 2**20 and _to_gray_or_rgb is to_gray_or_rgb
