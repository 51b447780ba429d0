"""brain_tumor.imaging.sniff: formats named by content; the file name is only a hint."""

import gzip

import nibabel as nib
import numpy as np
from imaging_samples import head_phantom, save_pil, write_dicom, write_nifti
from PIL import Image

from brain_tumor.imaging import load_slice, sniff_format


def test_sniff_format_names():
    assert sniff_format(b"\xff\xd8\xff\xe0" + bytes(10)) == "JPEG"
    assert sniff_format(b"II*\x00" + bytes(10)) == "TIFF"


def test_sniffs_content_not_extension(tmp_path):
    path = save_pil(tmp_path / "really_a_png.jpg", Image.fromarray(head_phantom().astype(np.uint8)), format="PNG")
    assert load_slice(path).format == "PNG"
    assert load_slice(path.read_bytes()).format == "PNG"  # bytes work too


def test_plain_nifti_misnamed_nii_gz_is_read(tmp_path):
    path = write_nifti(tmp_path / "plain.nii", (head_phantom()[:, :, None]).astype(np.uint8))
    renamed = tmp_path / "plain.nii.gz"
    renamed.write_bytes(path.read_bytes())
    assert load_slice(renamed).format == "NIfTI"


def test_dicom_without_preamble_by_name(tmp_path):
    path = write_dicom(tmp_path / "full.dcm", head_phantom() * 10)
    raw = path.read_bytes()[132:]  # drop the 128-byte preamble and "DICM"
    assert load_slice(raw, filename="x.dcm").format == "DICOM"


def test_nifti2_and_big_endian_nifti1_headers(tmp_path):
    volume = (head_phantom()[:, :, None] * np.ones((1, 1, 3))).astype(np.int16)
    nifti2 = tmp_path / "v2.nii"
    nib.save(nib.Nifti2Image(volume, np.eye(4)), str(nifti2))
    big_endian = nib.Nifti1Image(volume.astype(">i2"), np.eye(4))
    big_endian.header.set_data_dtype(">i2")
    swapped = big_endian.header.as_byteswapped(">")
    nifti1_be = tmp_path / "be.nii"
    nib.Nifti1Image(volume.astype(">i2"), np.eye(4), header=swapped).to_filename(str(nifti1_be))
    for path in (nifti2, nifti1_be):
        data = path.read_bytes()
        assert sniff_format(data) == "NIfTI" and sniff_format(gzip.compress(data)) == "NIfTI"
        scan = load_slice(path)
        assert scan.format == "NIfTI" and scan.num_slices == 3 and scan.image.size == (96, 96)
