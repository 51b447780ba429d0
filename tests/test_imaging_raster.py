"""brain_tumor.imaging.raster: JPEG, PNG, BMP and TIFF written for real in tmp_path."""

import numpy as np
import pytest
from hostile_files import tiff_huge_second_page
from imaging_samples import head_phantom, save_pil
from PIL import Image

from brain_tumor.imaging import LoadedScan, ScanError, load_slice


@pytest.mark.parametrize("fmt, suffix", [("JPEG", ".jpg"), ("PNG", ".png"), ("BMP", ".bmp"), ("TIFF", ".tif")])
def test_8bit_gray_formats(tmp_path, fmt, suffix):
    path = save_pil(tmp_path / f"scan{suffix}", Image.fromarray(head_phantom().astype(np.uint8)), format=fmt)
    scan = load_slice(path)
    assert isinstance(scan, LoadedScan)
    assert scan.format == fmt and scan.image.mode == "L" and scan.image.size == (96, 96)
    assert scan.num_slices == 1


def test_16bit_png_and_tiff_scaled_by_percentiles(tmp_path):
    arr = (head_phantom() * 200).astype(np.uint16)  # values up to 50,000
    for suffix in (".png", ".tif"):
        path = save_pil(tmp_path / f"deep{suffix}", Image.fromarray(arr))
        scan = load_slice(path)
        assert scan.image.mode == "L"
        out = np.asarray(scan.image)
        assert out.max() == 255 and out.min() == 0
        assert any("16-bit" in note for note in scan.notes)


def test_float_tiff(tmp_path):
    path = save_pil(tmp_path / "float.tif", Image.fromarray(head_phantom().astype(np.float32) / 7.0))
    assert np.asarray(load_slice(path).image).max() == 255


def test_rgb_gray_becomes_l_and_colour_stays_rgb(tmp_path):
    gray = head_phantom().astype(np.uint8)
    path = save_pil(tmp_path / "rgb_gray.png", Image.fromarray(np.stack([gray] * 3, axis=-1)))
    assert load_slice(path).image.mode == "L"
    colour = np.stack([gray, gray // 3, 255 - gray], axis=-1)
    path = save_pil(tmp_path / "colour.png", Image.fromarray(colour))
    assert load_slice(path).image.mode == "RGB"


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_rgba_composited_on_black(tmp_path, suffix):
    gray = head_phantom().astype(np.uint8)
    rgba = np.stack([gray, gray, gray, np.where(gray > 0, 255, 0).astype(np.uint8)], axis=-1)
    rgba[..., :3][gray == 0] = 255  # transparent pixels are white underneath
    scan = load_slice(save_pil(tmp_path / f"alpha{suffix}", Image.fromarray(rgba, mode="RGBA")))
    assert scan.image.mode == "L" and np.asarray(scan.image)[0, 0] == 0
    assert any("transparency" in note for note in scan.notes)


@pytest.mark.parametrize("suffix", [".png", ".tif", ".bmp"])
def test_palette_images(tmp_path, suffix):
    img = Image.fromarray(head_phantom().astype(np.uint8)).convert("P")
    assert load_slice(save_pil(tmp_path / f"palette{suffix}", img)).image.mode == "L"


def test_rgb_tiff_and_bmp(tmp_path):
    gray = head_phantom().astype(np.uint8)
    colour = Image.fromarray(np.stack([gray, gray // 2, gray // 4], axis=-1))
    for suffix in (".tif", ".bmp"):
        assert load_slice(save_pil(tmp_path / f"rgb{suffix}", colour)).image.mode == "RGB"


def test_cmyk_jpeg_answered(tmp_path):
    img = Image.fromarray(head_phantom().astype(np.uint8)).convert("CMYK")
    scan = load_slice(save_pil(tmp_path / "cmyk.jpg", img, format="JPEG"))
    assert scan.image.mode in ("L", "RGB")
    assert any("CMYK" in note for note in scan.notes)


def test_all_black_image_answered(tmp_path):
    scan = load_slice(save_pil(tmp_path / "black.png", Image.new("L", (64, 64), 0)))
    assert np.asarray(scan.image).max() == 0  # decoding is fine; the OOD check refuses it later


def test_multipage_tiff_is_a_stack(tmp_path):
    pages = [Image.fromarray(np.full((48, 48), 40 * i, dtype=np.uint8)) for i in range(5)]
    path = tmp_path / "stack.tif"
    pages[0].save(path, save_all=True, append_images=pages[1:])
    scan = load_slice(path)
    assert (scan.num_slices, scan.slice_index) == (5, 2)
    assert np.asarray(load_slice(path, slice_index=4).image)[0, 0] == 160


def test_tiff_page_checked_before_it_is_decoded(tmp_path):
    # Page 1 is 64 x 64; page 2 claims 20000 x 20000 (800 MB at 16 bits). Pillow opens the file on
    # page 1, so only a check of each page's own header catches page 2 before it is decoded.
    path = tmp_path / "pages.tif"
    path.write_bytes(tiff_huge_second_page())
    with pytest.raises(ScanError, match=r"TIFF page 2 is 20000x20000 pixels \(400 megapixels\); the limit is 40"):
        load_slice(path)  # the middle of 2 pages is page 2
    scan = load_slice(path, slice_index=0)  # page 1 alone is fine
    assert (scan.num_slices, scan.slice_index, scan.image.size) == (2, 0, (64, 64))


def test_tiff_pages_counted_up_to_the_limit(tmp_path, monkeypatch):
    from brain_tumor.imaging import limits

    pages = [Image.fromarray(np.full((48, 48), 40 * i, dtype=np.uint8)) for i in range(5)]
    path = tmp_path / "stack.tif"
    pages[0].save(path, save_all=True, append_images=pages[1:])
    monkeypatch.setattr(limits, "MAX_SLICES", 3)  # counting stops there, however many pages follow
    scan = load_slice(path)
    assert (scan.num_slices, scan.slice_index) == (3, 1) and np.asarray(scan.image)[0, 0] == 40
