"""bench/find_copies.py: every copy of a slice in a folder, the mirror image included."""

import numpy as np
import pytest
from helpers_datasets import reencode
from PIL import ImageEnhance, ImageOps

from bench.find_copies import main
from synthetic import make_slice


def test_copies_re_saved_re_contrasted_or_flipped_are_listed_and_distinct_slices_are_not(tmp_path, capsys):
    rng = np.random.default_rng(3)
    slice_, other = make_slice("glioma", rng, 96), make_slice("notumor", np.random.default_rng(99), 96)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    slice_.save(tmp_path / "a" / "doubted.jpg")
    ImageEnhance.Contrast(reencode(slice_, 70)).enhance(1.2).save(tmp_path / "b" / "recontrasted.jpg")
    ImageOps.mirror(slice_).save(tmp_path / "b" / "flipped.png")
    other.save(tmp_path / "b" / "other.jpg")
    main(["--folder", str(tmp_path / "a"), str(tmp_path / "b"), "--of", "doubted.jpg"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("3 images of 4 at cosine >= 0.97")
    listed = [line.split()[-1] for line in lines[1:]]
    assert {name.rsplit("/", 1)[-1] for name in listed} == {"doubted.jpg", "recontrasted.jpg", "flipped.png"}
    assert lines[1].startswith("1.000") and lines[1].endswith("doubted.jpg")  # itself first


def test_a_name_not_in_the_folders_is_a_clear_error(tmp_path, capsys):
    make_slice("glioma", np.random.default_rng(0), 64).save(tmp_path / "x.jpg")
    with pytest.raises(SystemExit):
        main(["--folder", str(tmp_path), "--of", "missing.jpg"])
    error = capsys.readouterr().err
    assert "not found in" in error and "missing.jpg" in error


def test_output_name_writes_the_list_and_a_picture_of_the_copies(tmp_path, monkeypatch):
    import bench.find_copies as find_copies

    monkeypatch.setattr(find_copies, "RESULTS_DIR", tmp_path / "results")
    slice_ = make_slice("glioma", np.random.default_rng(4), 96)
    slice_.save(tmp_path / "one.jpg")
    ImageOps.mirror(slice_).save(tmp_path / "two.jpg")
    main(["--folder", str(tmp_path), "--of", "one.jpg", "--output_name", "copies_of_one"])
    text = (tmp_path / "results" / "copies_of_one.md").read_text()
    assert text.startswith("    python bench/find_copies.py --folder") and "2 images of 2" in text
    assert text.count("\n- ") == 2
    assert (tmp_path / "results" / "copies_of_one.png").stat().st_size > 0
