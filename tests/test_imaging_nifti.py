"""brain_tumor.imaging.nifti: NIfTI volumes written with nibabel in tmp_path."""

import numpy as np
import pytest
from hostile_files import nifti_huge_plane
from imaging_samples import write_nifti

from brain_tumor.imaging import ScanError, load_slice


def test_nifti_3d_middle_axial_slice_and_slice_index(tmp_path):
    volume = np.zeros((40, 50, 9), dtype=np.int16)
    for k in range(9):
        volume[5:35, 5:45, k] = 100 * (k + 1)
        volume[20, 25, k] = 5000  # one outlier voxel per slice; percentiles ignore it
    for name in ("v.nii", "v.nii.gz"):
        path = write_nifti(tmp_path / name, volume)
        scan = load_slice(path)
        assert scan.format == "NIfTI" and (scan.num_slices, scan.slice_index) == (9, 4)
        assert scan.image.size == (40, 50)  # width = x (left-right), height = y
        assert load_slice(path, slice_index=0).slice_index == 0


def test_nifti_orientation_radiological(tmp_path):
    volume = np.zeros((40, 50, 3), dtype=np.uint8)
    volume[35:, 45:, :] = 200  # high x (patient right), high y (anterior)
    image = np.asarray(load_slice(write_nifti(tmp_path / "o.nii", volume)).image)
    assert image[:5, :5].mean() > 200  # anterior at the top, patient's right on the image's left
    assert image[-5:, -5:].mean() == 0


def test_nifti_finds_axial_axis_in_any_storage_order(tmp_path):
    volume = np.zeros((7, 40, 36), dtype=np.uint8)  # voxel axes: (S, A, R)
    volume[:, 5:35, 5:25] = 100
    affine = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=float)
    scan = load_slice(write_nifti(tmp_path / "sar.nii", volume, affine))
    assert (scan.num_slices, scan.slice_index) == (7, 3)
    assert scan.image.size == (36, 40)


@pytest.mark.parametrize("shape, dtype, expected", [
    ((10000, 10000, 1), np.float64, r"NIfTI slice is 10000x10000 pixels \(100 megapixels\); the limit is 40"),
    ((7000, 7000, 2), np.uint8, r"NIfTI slice is 7000x7000 pixels \(49 megapixels\); the limit is 40"),
    ((600, 600, 600), np.uint8, r"NIfTI volume is 600x600x600 voxels: 216,000,000 values; the limit is 134,217,728"),
])
def test_nifti_plane_and_volume_checked_from_the_header(tmp_path, shape, dtype, expected):
    # 2-D planes and 3-D axial slices have a pixel limit, whole files a voxel limit; all read from the header.
    path = tmp_path / "big.nii.gz"
    path.write_bytes(nifti_huge_plane(shape, dtype))
    with pytest.raises(ScanError, match=expected):
        load_slice(path)
