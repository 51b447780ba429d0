"""Write the DICOM and NIfTI examples from real JPEG slices of the official Testing split.

    python examples/make_converted.py

The pixels are the dataset's own (8-bit, 224 x 224); only the container changes. The DICOM
stores them as 12-bit values (x16) with a window that maps them back to the original 0..255, so
the app's DICOM path (rescale, windowing) is exercised on a real slice. The NIfTI holds the
slice as a one-slice volume with a 1 mm RAS affine, oriented so the app shows it as the JPEG.
"""

from pathlib import Path

import nibabel as nib
import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
TESTING = HERE.parents[1] / "shared" / "data" / "brain-tumor-mri-v1" / "Testing"


def write_dicom(pixels: np.ndarray, path: Path) -> None:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    # UIDs derived from the file's name, so running this script again writes the same bytes.
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=["brain-tumor-mri examples", path.name])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
    ds.Modality = "MR"
    ds.PatientName = "Anonymous^Example"
    ds.PatientID = "EXAMPLE"
    ds.SeriesDescription = "converted from the Brain Tumor MRI Dataset (CC0), Testing split"
    ds.set_pixel_data(
        pixels.astype(np.uint16) * 16, photometric_interpretation="MONOCHROME2", bits_stored=12, generate_instance_uid=False
    )
    ds.RescaleSlope, ds.RescaleIntercept = 1, 0
    ds.WindowCenter, ds.WindowWidth = 2040, 4081  # maps 0..4080 back onto 0..255
    ds.save_as(path, enforce_file_format=True)


def write_nifti(pixels: np.ndarray, path: Path) -> None:
    # The app shows voxel [x, y] at row (ny-1-y), column (nx-1-x): store the JPEG flipped to match.
    volume = np.ascontiguousarray(pixels[::-1, ::-1].T)[:, :, None].astype(np.uint8)
    nib.save(nib.Nifti1Image(volume, np.eye(4)), path)


if __name__ == "__main__":
    def read(name):
        return np.asarray(Image.open(TESTING / name).convert("L"))

    write_dicom(read("pituitary/Te-pi_0020.jpg"), HERE / "pituitary_Te-pi_0020_converted.dcm")
    write_nifti(read("meningioma/Te-me_0020.jpg"), HERE / "meningioma_Te-me_0020_converted.nii.gz")
