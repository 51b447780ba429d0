"""UploadReader: uploads are read once into memory and gone from disk; only uploads are read."""

import os
import time

import pytest

from brain_tumor.imaging import ScanError
from brain_tumor.uploads import UploadReader


@pytest.fixture
def upload_dir(tmp_path):
    folder = tmp_path / "uploads"
    folder.mkdir()
    return folder


def upload(upload_dir, name="scan.jpg", data=b"pixels", folder="abc123"):
    path = upload_dir / folder / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return path


def test_read_returns_bytes_and_deletes_the_file(upload_dir):
    path = upload(upload_dir)
    assert UploadReader(upload_dir, 1000).read(str(path)) == b"pixels"
    assert not path.exists()


def test_same_upload_read_twice_serves_the_second_from_memory(upload_dir):
    # Two requests that upload the same content share one path; the first deletes the file.
    reader, path = UploadReader(upload_dir, 1000), upload(upload_dir)
    assert reader.read(str(path)) == b"pixels" and reader.read(str(path)) == b"pixels"
    reader = UploadReader(upload_dir, 1000, stash_seconds=0)
    path = upload(upload_dir)
    reader.read(str(path))
    with pytest.raises(ScanError, match="no longer on the server"):
        reader.read(str(path))


@pytest.mark.parametrize("outside", ["elsewhere.jpg", "uploads/../elsewhere.jpg", "missing.jpg"])
def test_files_outside_the_upload_folder_are_refused_alike(upload_dir, outside):
    (upload_dir.parent / "elsewhere.jpg").write_bytes(b"secret")
    with pytest.raises(ScanError, match="not a file uploaded to this server") as caught:
        UploadReader(upload_dir, 1000).read(str(upload_dir.parent / outside))
    assert "elsewhere" not in str(caught.value) and (upload_dir.parent / "elsewhere.jpg").exists()


def test_protected_files_stay(upload_dir):
    example = upload(upload_dir, "example.jpg")
    reader = UploadReader(upload_dir, 1000, protected=lambda: {str(example)})
    assert reader.read(str(example)) == b"pixels" and example.exists()


def test_too_large_upload_refused_and_deleted(upload_dir):
    path = upload(upload_dir, data=b"x" * 3 * 2**20)
    with pytest.raises(ScanError, match="3 MB; the limit is 2 MB"):
        UploadReader(upload_dir, 2 * 2**20).read(str(path))
    assert not path.exists()


def test_no_file_named(upload_dir):
    with pytest.raises(ScanError, match="No file was uploaded"):
        UploadReader(upload_dir, 1000).read(None)


def test_empty_hash_folders_are_swept_once_old(upload_dir):
    path = upload(upload_dir, folder="old")
    young = upload(upload_dir, folder="young")
    reader = UploadReader(upload_dir, 1000)
    reader.read(str(path)), reader.read(str(young))
    old_time = time.time() - 120
    os.utime(path.parent, (old_time, old_time))
    reader.remove_empty_folders()
    assert not path.parent.exists() and young.parent.exists()  # a young one may be receiving an upload
