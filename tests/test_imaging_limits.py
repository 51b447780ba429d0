"""brain_tumor.imaging.limits: every reader checks the limits from the header, before it allocates.

The hostile files are small on disk but claim (or inflate to) far more than the limits allow.
Each is fed to load_slice in a child process, which reports its own peak resident memory:
refused with our message, and the child stays under 700 MB. Before these checks (one child per
file) the deflated DICOM peaked at 1.8 GB, the 2-D NIfTI at 2.4 GB (and was loaded), the RLE
DICOM at 0.9 GB (loaded), the JPEG DICOM at 1.4 GB, and the TIFF was refused by Pillow's own
DecompressionBombError instead of a ScanError.

The child reads VmHWM from /proc/self/status, not getrusage's ru_maxrss: on Linux a new child's
ru_maxrss already holds the parent's resident size at the fork (near 1 GB for a pytest process
that has trained a model), while VmHWM belongs to the child's own memory map.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hostile_files import (dicom_deflate_bomb, dicom_huge_header, dicom_lying_jpeg, dicom_rle_bomb, nifti_huge_plane,
                           tiff_huge_second_page)
from imaging_samples import head_phantom, save_pil
from PIL import Image

from brain_tumor.imaging import ScanError, limits, load_slice

ROOT = Path(__file__).resolve().parent.parent
PEAK_LIMIT_MB = 700

# name -> (writer, words the refusal must contain)
HOSTILE = {
    "deflated.dcm": (dicom_deflate_bomb, "inflates to more than 100 MB"),
    "pages.tif": (tiff_huge_second_page, "TIFF page 2 is 20000x20000"),
    "plane.nii.gz": (nifti_huge_plane, "NIfTI slice is 10000x10000"),
    "claims.dcm": (dicom_huge_header, "2048x2048 pixels x 1000 frames"),
    "rle.dcm": (lambda: dicom_rle_bomb(encoded_bytes=12 * 2**20), "RLE-compressed to 12 MB"),
    "jpeg.dcm": (dicom_lying_jpeg, "compressed image is 12000x12000"),
}

CHILD = """
import json, sys, warnings
warnings.simplefilter("ignore")
from brain_tumor.imaging import ScanError, load_slice
for path in sys.argv[1:]:
    try:
        load_slice(path)
        outcome = "loaded"
    except ScanError as error:
        outcome = "ScanError: " + str(error)
    except Exception as error:
        outcome = type(error).__name__ + ": " + str(error)
    with open("/proc/self/status") as status:
        peak_mb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024  # kB
    print(json.dumps({"file": path, "outcome": outcome, "peak_mb": peak_mb}), flush=True)
"""


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads the peak from Linux's /proc")
def test_hostile_files_refused_within_700_mb(tmp_path):
    paths = []
    for name, (write, _) in HOSTILE.items():
        paths.append(tmp_path / name)
        paths[-1].write_bytes(write())
        assert paths[-1].stat().st_size < 13 * 2**20  # small on disk
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    # One child for all files: VmHWM is the peak so far, so each line bounds the files up to it.
    done = subprocess.run([sys.executable, "-c", CHILD, *map(str, paths)], env=env, capture_output=True, text=True,
                          timeout=300)
    reports = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(reports) == len(HOSTILE), done.stderr[-2000:]
    for report, (name, (_, expected)) in zip(reports, HOSTILE.items()):
        assert report["outcome"].startswith("ScanError: ") and expected in report["outcome"], (name, report)
        assert report["peak_mb"] < PEAK_LIMIT_MB, (name, report)


def test_limits_are_read_when_checked(tmp_path, monkeypatch):
    path = save_pil(tmp_path / "scan.png", Image.fromarray(head_phantom().astype(np.uint8)))
    load_slice(path)
    monkeypatch.setattr(limits, "MAX_PIXELS", 96 * 96 - 1)
    with pytest.raises(ScanError, match=r"96x96 pixels .*the limit is 0 megapixels"):
        load_slice(path)
