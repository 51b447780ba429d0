"""The selection and layout of bench/missed_gallery.py, on scores and images whose answers are known."""

import numpy as np
import pytest
from PIL import Image

from bench.missed_gallery import contact_sheet, rescored, shown_in, spread, surest_misses


def test_the_surest_misses_come_lowest_first_and_never_include_a_found_tumour():
    p_tumour = np.array([0.9, 0.01, 0.4, 0.002, 0.6, 0.01])
    assert surest_misses(p_tumour, 3).tolist() == [3, 1, 5]
    assert surest_misses(p_tumour, 10).tolist() == [3, 1, 5, 2]  # 0.9 and 0.6 were found: never shown


def test_the_spread_counts_every_slice_once_with_the_edges_in_the_upper_bin():
    p_tumour = np.array([0.0, 0.049, 0.05, 0.3, 0.5, 0.99, 1.0])
    rows = spread(p_tumour)
    assert [n for _, n, _ in rows] == [2, 2, 3]
    assert sum(share for _, _, share in rows) == pytest.approx(1.0)
    assert rows[-1][0] == "0.50 <= P(tumour) <= 1.00"


def test_the_contact_sheet_tiles_images_of_any_shape_row_by_row():
    bright, dark = Image.new("RGB", (300, 100), (200, 200, 200)), Image.new("L", (50, 80), 30)
    sheet = contact_sheet([bright, dark, bright], ["a 0.01", "b 0.02", "c 0.03"], columns=2, tile=40)
    assert sheet.size == (80, 80) and sheet.mode == "L"
    pixels = np.asarray(sheet)
    assert pixels[20, 20] == 200 and pixels[30, 60] == 30  # each tile's centre holds its own image
    assert pixels[60, 60] == 0  # the fourth tile is empty


def test_a_gallery_md_gives_back_the_names_it_shows_and_they_are_rescored_by_file_name():
    md = "| bin |\n\n`m.png` shows the 3 with the lowest P(tumour), lowest first: y1.jpg 0.002, y 2.jpg 0.010, y3.jpg 0.300.\n"
    assert shown_in(md) == ["y1.jpg", "y 2.jpg", "y3.jpg"]
    # A gallery written with --compare_with lists another run's slices after its own: only its own are read.
    compared = md + "\nOf the 2 slices `old.md` shows, this model still misses 1 (P(tumour) < 0.5): y9.jpg 0.200.\n"
    assert shown_in(compared) == ["y1.jpg", "y 2.jpg", "y3.jpg"]
    files = ["/data/yes/y3.jpg", "/data/yes/y1.jpg", "/data/yes/y 2.jpg", "/data/yes/y4.jpg"]
    p_tumour = np.array([0.7, 0.1, 0.45, 0.2])
    assert rescored(shown_in(md), files, p_tumour) == [("y1.jpg", 0.1), ("y 2.jpg", 0.45), ("y3.jpg", 0.7)]
    with pytest.raises(SystemExit, match="y9.jpg"):
        rescored(["y9.jpg"], files, p_tumour)
