"""NIfTI-1/2 volumes (.nii, .nii.gz) through nibabel: one axial slice, read alone.

The header gives the shape before any voxel is read; the limits are checked on it (voxels in
the file, pixels in the slice), then only the wanted slice is read from the (gzip) stream, so a
large volume never sits in memory whole.
"""

from __future__ import annotations

import gzip
import io

import numpy as np

from . import limits
from .errors import ScanError, first_line
from .pixels import scale_to_uint8
from .scan import LoadedScan, pick_index


def load_nifti(data: bytes, slice_index: int | None) -> LoadedScan:
    import nibabel as nib  # imported here: only NIfTI uploads pay for it

    stream = gzip.GzipFile(fileobj=io.BytesIO(data)) if data[:2] == b"\x1f\x8b" else io.BytesIO(data)
    try:
        head = stream.read(nib.Nifti2Header.sizeof_hdr)
        stream.seek(0)
        image_class = nib.Nifti2Image if nib.Nifti2Header.may_contain_header(head) else nib.Nifti1Image
        img = image_class.from_stream(stream)
    except Exception as error:  # nibabel raises HeaderDataError, ImageFileError, ValueError...
        raise ScanError(f"The NIfTI header cannot be read ({first_line(error)}).") from None

    shape = tuple(int(n) for n in img.shape)
    while len(shape) > 3 and shape[-1] == 1:  # trailing singleton dimensions carry nothing
        shape = shape[:-1]
    if len(shape) > 3:
        raise ScanError(
            f"The NIfTI file is {len(shape)}-D ({'x'.join(map(str, shape))}): a time series or a "
            "multi-volume scan. Upload a 3-D structural volume or a single 2-D slice."
        )
    limits.check_values(int(np.prod(shape, dtype=np.int64)), f"NIfTI volume is {'x'.join(map(str, shape))} voxels")
    axes = [i for i, n in enumerate(shape) if n > 1]
    if len(axes) < 2:
        raise ScanError(f"The NIfTI file has shape {shape}; it holds no 2-D image.")

    # Slice across the voxel axis closest to the head-foot direction, so the slices are axial
    # whatever the storage order; a file with one plane only is shown as that plane.
    ornt = nib.io_orientation(img.affine)
    if np.isnan(ornt).any():  # degenerate affine: trust the storage order
        ornt = np.array([[0, 1], [1, 1], [2, 1]], dtype=float)
    axial_axis = int(np.flatnonzero(ornt[:, 0] == 2)[0]) if len(axes) == 3 else None
    in_plane = axes if axial_axis is None else [i for i in range(3) if i != axial_axis]
    limits.check_plane(*(shape[i] for i in in_plane), what="NIfTI slice")
    count = shape[axial_axis] if axial_axis is not None else 1
    index = pick_index(slice_index, count, "slice")
    try:
        if axial_axis is None:
            arr = np.asarray(img.dataobj)
        else:
            slicer = [slice(None)] * 3
            slicer[axial_axis] = index
            arr = np.asarray(img.dataobj[tuple(slicer)])
        arr = arr.reshape([shape[i] for i in in_plane])
    except Exception as error:  # truncated data, bad dtype...
        raise ScanError(
            f"The NIfTI image data cannot be read: it is damaged or truncated ({first_line(error)})."
        ) from None
    arr = _orient_slice(arr, ornt[in_plane])
    notes = ["scaled to 8-bit by the slice's 0.5-99.5 percentiles"]
    if count > 1:
        notes.insert(0, f"3-D volume with {count} axial slices: slice {index} shown")
    return LoadedScan(image=scale_to_uint8(arr), format="NIfTI", num_slices=count, slice_index=index, notes=notes)


def _orient_slice(arr: np.ndarray, ornt: np.ndarray) -> np.ndarray:
    """Show a 2-D slice as a radiology viewer does.

    `ornt` gives, for each array axis, the RAS world axis it runs along and its sign. The slice
    is first put in world order (first axis = lower world axis, both increasing), then displayed
    with the higher world axis (anterior, or superior) at the top and the lower one (patient's
    right) on the image's left: the radiological convention of the dataset's JPEGs.
    """
    if ornt[0, 0] > ornt[1, 0]:  # stored as (A-P, R-L): swap to (R-L, A-P)
        arr, ornt = arr.T, ornt[::-1]
    if ornt[0, 1] < 0:
        arr = arr[::-1, :]
    if ornt[1, 1] < 0:
        arr = arr[:, ::-1]
    return arr[::-1, ::-1].T  # a view: scale_to_uint8 copies it a block of rows at a time
