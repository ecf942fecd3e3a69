"""Reading users' image files of every common kind, on real files written to disk."""

import numpy as np
from PIL import Image
import pytest
import tifffile

from lstm_endec_jax.data import image_io

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (12, 17, 3), dtype=np.uint8)
GRAY = RNG.integers(0, 256, (12, 17), dtype=np.uint8)


def _save(path, image, **kwargs):
  image.save(path, **kwargs)
  return path


@pytest.mark.parametrize(
    "suffix,pil_format", [(".png", "PNG"), (".tif", "TIFF"), (".bmp", "BMP"), (".tiff", "TIFF")]
)
def test_lossless_rgb_formats_round_trip_exactly(tmp_path, suffix, pil_format):
  path = _save(tmp_path / f"x{suffix}", Image.fromarray(RGB), format=pil_format)
  np.testing.assert_array_equal(image_io.read_image(path), RGB)


def test_jpeg_reads_close_to_the_original(tmp_path):
  smooth = np.repeat(np.repeat(RGB[:3, :4], 8, axis=0), 8, axis=1)  # 8x8 blocks JPEG keeps well.
  path = _save(tmp_path / "x.jpg", Image.fromarray(smooth), quality=98, subsampling=0)
  image = image_io.read_image(path)
  assert image.shape == smooth.shape and image.dtype == np.uint8
  assert np.abs(image.astype(int) - smooth).mean() < 2


def test_grayscale_becomes_three_equal_channels(tmp_path):
  image = image_io.read_image(_save(tmp_path / "g.png", Image.fromarray(GRAY)))
  np.testing.assert_array_equal(image, np.stack([GRAY] * 3, axis=-1))


def test_rgba_drops_alpha_without_compositing(tmp_path):
  rgba = np.concatenate([RGB, np.zeros_like(RGB[..., :1])], axis=-1)  # Fully transparent.
  image = image_io.read_image(_save(tmp_path / "a.png", Image.fromarray(rgba)))
  np.testing.assert_array_equal(image, RGB)


def test_palette_with_transparency_maps_through_the_palette(tmp_path):
  palette_image = Image.fromarray(GRAY % 4).convert("P")
  palette = [0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255]
  palette_image.putpalette(palette)
  path = _save(tmp_path / "p.png", palette_image, transparency=0)
  expected = np.asarray(palette, np.uint8).reshape(4, 3)[GRAY % 4]
  np.testing.assert_array_equal(image_io.read_image(path), expected)


def test_sixteen_bit_grayscale_png_is_scaled_not_clipped(tmp_path):
  values = np.array([[0, 257 * 128, 65535, 1000]], np.uint16)
  path = _save(tmp_path / "g16.png", Image.fromarray(values))
  assert Image.open(path).mode.startswith("I;16")
  image = image_io.read_image(path)
  np.testing.assert_array_equal(image[..., 0], [[0, 128, 255, 4]])


def test_sixteen_bit_rgb_tiff_and_float_tiff(tmp_path):
  rgb16 = RGB.astype(np.uint16) * 257
  tifffile.imwrite(tmp_path / "rgb16.tif", rgb16, photometric="rgb")
  np.testing.assert_array_equal(image_io.read_image(tmp_path / "rgb16.tif"), RGB)
  tifffile.imwrite(tmp_path / "f.tif", GRAY.astype(np.float32) / 255)
  np.testing.assert_array_equal(image_io.read_image(tmp_path / "f.tif")[..., 1], GRAY)


def test_exif_orientation_is_applied(tmp_path):
  pixels = np.zeros((16, 32, 3), np.uint8)
  pixels[:, :16] = 255  # Left half white.
  exif = Image.Exif()
  exif[0x0112] = 6  # Orientation: the camera was turned; display rotated 90 degrees clockwise.
  path = _save(tmp_path / "r.jpg", Image.fromarray(pixels), exif=exif, quality=95)
  image = image_io.read_image(path)
  assert image.shape == (32, 16, 3)
  assert image[:12].mean() > 240 and image[20:].mean() < 15  # White half now on top.


def test_one_by_one_image(tmp_path):
  image = image_io.read_image(_save(tmp_path / "1.png", Image.fromarray(RGB[:1, :1])))
  np.testing.assert_array_equal(image, RGB[:1, :1])


def test_truncated_jpeg_error_names_the_file(tmp_path):
  full = _save(tmp_path / "full.jpg", Image.fromarray(np.tile(RGB, (8, 8, 1))), quality=90)
  truncated = tmp_path / "truncated.jpg"
  truncated.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
  with pytest.raises(image_io.ImageReadError, match="truncated.jpg: cannot decode") as error:
    image_io.read_image(truncated)
  assert error.value.path == truncated


def test_text_file_named_png_and_missing_file(tmp_path):
  fake = tmp_path / "notes.png"
  fake.write_text("not an image\n")
  with pytest.raises(image_io.ImageReadError, match="notes.png: not an image format"):
    image_io.read_image(fake)
  with pytest.raises(image_io.ImageReadError, match="gone.jpg: no such file"):
    image_io.read_image(tmp_path / "gone.jpg")
  with pytest.raises(image_io.ImageReadError, match="not a regular file"):
    image_io.read_image(tmp_path)


def test_find_images_walks_recursively_in_sorted_order(tmp_path):
  for name in ["b.PNG", "a.jpg", "sub/c.tiff", "sub/deeper/d.bmp", "notes.txt", "sub/e.json"]:
    (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / name).write_bytes(b"")
  found = [p.relative_to(tmp_path).as_posix() for p in image_io.find_images(tmp_path)]
  assert found == ["a.jpg", "b.PNG", "sub/c.tiff", "sub/deeper/d.bmp"]
  expanded = list(image_io.expand_inputs([tmp_path / "sub", tmp_path / "missing.jpg"]))
  assert [(p.name, r.as_posix()) for p, r in expanded] == [
      ("c.tiff", "c.tiff"),
      ("d.bmp", "deeper/d.bmp"),
      ("missing.jpg", "missing.jpg"),
  ]


def test_resize_to_model_input_and_map_back():
  small = image_io.resize_image(np.tile(RGB, (30, 20, 1)), 256, 256)
  assert small.shape == (256, 256, 3) and small.dtype == np.uint8
  probabilities = np.linspace(0, 1, 256 * 256, dtype=np.float32).reshape(256, 256)
  restored = image_io.resize_map(probabilities, 360, 340)
  assert restored.shape == (360, 340) and restored.dtype == np.float32
  assert 0 <= restored.min() and restored.max() <= 1
  assert restored[0].mean() < restored[-1].mean()  # Orientation kept.


def test_write_png_round_trip(tmp_path):
  path = tmp_path / "out" / "m.png"
  image_io.write_png(path, RGB)
  np.testing.assert_array_equal(np.asarray(Image.open(path)), RGB)
  assert [p.name for p in path.parent.iterdir()] == ["m.png"]


def test_multi_frame_files_say_that_only_the_first_frame_is_read(tmp_path, caplog):
  frames = [Image.new("RGB", (8, 8), colour) for colour in ("red", "green", "blue")]
  frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
  with caplog.at_level("WARNING"):
    pixels = image_io.read_image(tmp_path / "anim.gif")
  assert pixels.shape == (8, 8, 3) and pixels[0, 0, 0] > 200  # the first frame: red
  assert "holds 3 frames; only the first is used" in caplog.text
