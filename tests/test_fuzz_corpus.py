"""A corpus of broken and odd image files, generated here, through predict, a manual-dir builder
and the input pipeline: no crash, every bad file reported by name with its reason, every good one
processed, the right exit code."""

import io
import json
import pathlib
import struct
import subprocess
import sys
import zlib

import numpy as np
from PIL import Image
import pytest
import tensorflow_datasets as tfds

from lstm_endec_jax.data import input_pipeline
import trained_run

RNG = np.random.default_rng(0)


def _photo(height: int, width: int) -> np.ndarray:
  y, x = np.mgrid[:height, :width]
  base = np.stack([x * 255 // max(width, 1), y * 255 // max(height, 1), (x + y) % 256], -1)
  return np.clip(base + RNG.integers(-20, 20, base.shape), 0, 255).astype(np.uint8)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
  return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _bomb_png() -> bytes:
  """A valid PNG header declaring 60000 x 60000 pixels (3.6 gigapixels) with almost no data."""
  header = struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)
  return (
      b"\x89PNG\r\n\x1a\n"
      + _png_chunk(b"IHDR", header)
      + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
      + _png_chunk(b"IEND", b"")
  )


def _encoded(image: Image.Image, fmt: str, **kwargs) -> bytes:
  buffer = io.BytesIO()
  image.save(buffer, format=fmt, **kwargs)
  return buffer.getvalue()


def write_corpus(folder: pathlib.Path, suffix: str = "") -> tuple[set[str], set[str]]:
  """Writes the corpus; returns (names that must be processed, names that must be reported).

  `suffix` goes before each extension (e.g. "_orig" for a builder that wants it).
  """
  folder.mkdir(parents=True, exist_ok=True)
  photo = Image.fromarray(_photo(60, 80))
  jpeg = _encoded(photo, "JPEG", quality=90)
  png = _encoded(photo, "PNG")
  exif = Image.Exif()
  exif[0x0112] = 6  # rotated 90 degrees clockwise
  frames = [Image.fromarray(_photo(40, 40)).convert("P") for _ in range(3)]
  gif = io.BytesIO()
  frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:])
  good = {
      f"one_pixel{suffix}.png": _encoded(Image.fromarray(_photo(1, 1)), "PNG"),
      f"deep16{suffix}.png": _encoded(
          Image.fromarray((np.asarray(photo.convert("L"), np.uint16) * 257)), "PNG"
      ),
      f"cmyk{suffix}.jpg": _encoded(photo.convert("CMYK"), "JPEG"),
      f"palette{suffix}.png": _encoded(photo.convert("P"), "PNG"),
      f"animated{suffix}.gif": gif.getvalue(),
      f"rotated{suffix}.jpg": _encoded(photo, "JPEG", exif=exif.tobytes()),
      f"panorama{suffix}.jpg": _encoded(Image.fromarray(_photo(200, 4000)), "JPEG"),
      f"ünïcode name with spaces{suffix}.jpg": jpeg,
  }
  bad = {
      f"empty{suffix}.jpg": b"",
      f"text{suffix}.jpg": b"this is a text file, not a JPEG\n",
      f"truncated{suffix}.jpg": jpeg[: len(jpeg) // 2],
      f"bad_crc{suffix}.png": png[:29] + bytes([png[29] ^ 0xFF]) + png[30:],
      f"bomb{suffix}.png": _bomb_png(),
  }
  for name, data in {**good, **bad}.items():
    (folder / name).write_bytes(data)
  (folder / f"directory{suffix}.jpg").mkdir()
  (folder / f"dangling{suffix}.jpg").symlink_to(folder / "does_not_exist.jpg")
  return set(good), set(bad) | {f"dangling{suffix}.jpg"}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
  return trained_run.trained_workdir(tmp_path_factory)


def test_predict_processes_the_good_files_and_names_every_bad_one(workdir, tmp_path):
  good, bad = write_corpus(tmp_path / "corpus")
  output = tmp_path / "out"
  result = subprocess.run(
      [
          sys.executable,
          "-m",
          "lstm_endec_jax.predict",
          f"--checkpoint={workdir}",
          f"--output={output}",
          str(tmp_path / "corpus"),
      ],
      cwd=trained_run.REPO_ROOT,
      capture_output=True,
      text=True,
      timeout=600,
  )
  assert result.returncode == 1, result.stderr[-3000:]  # some files failed
  assert "Traceback" not in result.stderr
  records = {
      pathlib.Path(r["image"]).name: r
      for r in map(json.loads, (output / "predictions.jsonl").read_text().splitlines())
  }
  assert set(records) == good | bad
  for name in good:
    assert "error" not in records[name], records[name]
    assert pathlib.Path(records[name]["heatmap"]).stat().st_size > 0
  for name in bad:
    assert records[name]["error"], name
    assert name in result.stderr
  assert records["rotated.jpg"]["height"] == 80  # EXIF orientation applied: 60x80 -> 80x60
  assert (records["panorama.jpg"]["height"], records["panorama.jpg"]["width"]) == (200, 4000)


def test_a_manual_dir_builder_and_the_input_pipeline_take_the_corpus(tmp_path):
  """IMD2020's layout takes any `<name>_orig.<ext>` as an authentic image: the good files are
  built and read back by the input pipeline, each bad file is skipped with its reason."""
  good, bad = write_corpus(tmp_path / "manual" / "imd2020" / "folder", suffix="_orig")
  builder = tfds.builder("imd2020", data_dir=tmp_path / "tfds")
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(
          manual_dir=str(tmp_path / "manual"), try_download_gcs=False
      )
  )
  skipped = {
      pathlib.Path(s["file_name"]).name: s["reason"] for s in builder.info.metadata["skipped_files"]
  }
  files = {name for name in bad if (tmp_path / "manual" / "imd2020" / "folder" / name).is_file()}
  assert files <= set(skipped), skipped
  assert all(skipped[name] for name in files)
  splits = [name for name, info in builder.info.splits.items() if info.num_examples]
  built = [
      pathlib.Path(r["file_name"].decode()).name
      for split in splits
      for r in tfds.data_source("imd2020", split=split, data_dir=tmp_path / "tfds")
  ]
  assert sorted(built) == sorted(good)

  config = trained_run.smoke_config(tmp_path / "tfds")
  config.dataset.name = "imd2020"
  seen = 0
  for split in splits:
    for batch in input_pipeline.create_eval_loader(config, split, batch_size=2):
      assert batch["image"].shape[1:] == (256, 256, 3) and batch["image"].dtype == np.uint8
      seen += len(batch["image"])
  assert seen == len(good)
