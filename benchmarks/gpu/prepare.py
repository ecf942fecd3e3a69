r"""Prepares, on this CPU machine, what the one-shot GPU run (`benchmarks/gpu/run.py`) carries.

  python -m benchmarks.gpu.prepare        # writes .gpu_carry/ (git-ignored), prints the commands

The lent GPU machine has jax, flax, optax, orbax, numpy, scikit-image, OpenCV, torch and more, but
no network, and the device tool carries at most 64 MiB per call. This writes:
  .gpu_carry/wheels/    Python 3.12 manylinux wheels of the project's dependencies the machine
                        lacks (tensorflow-datasets, grain, array_record, ml-collections,
                        tensorboardX, sporco for its five photographs, and their own needs);
  .gpu_carry/photos_a/, .gpu_carry/photos_b/
                        the mvtb-data photographs of the default dataset (88 MB of PNG, over one
                        call's limit with the wheels), as lossless WebP in two halves: the first
                        call stages half A on the machine, the second carries half B and runs.
Decoded, each photograph has exactly the pixels `photos.load_photo` reads, so the dataset built
there is `synthetic_splice/default` itself.
"""

from importlib import metadata
import json
import pathlib
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence

from absl import app
from absl import flags
from packaging import requirements
import PIL.Image

from tfds_builders.synthetic_splice import photos

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
CARRY_DIR = REPO_ROOT / ".gpu_carry"
CARRY_LIMIT_BYTES = 64 * 2**20
# What the run needs that the GPU image lacks (device tool's KINDS.md lists what it has).
NEEDED = ("tensorflow-datasets", "grain", "array-record", "ml-collections", "tensorboardx")
DATA_ONLY = ("sporco",)  # carried without its dependencies: only its photographs are read
# The GPU image's packages (KINDS.md, 2026-11-17), normalised; their wheels are not carried.
ON_DEVICE = frozenset(
    "absl-py attrs certifi charset-normalizer chex click cloudpickle contourpy cycler etils "
    "filelock flatbuffers flax fonttools fsspec grpcio h5py humanize idna imageio jax jaxlib "
    "jinja2 kiwisolver markdown markupsafe matplotlib ml-dtypes msgpack networkx numpy "
    "opencv-python-headless opt-einsum optax orbax-checkpoint packaging pandas pillow protobuf "
    "psutil pyarrow pygments pyparsing python-dateutil pyyaml requests rich scikit-image "
    "scikit-learn scipy setuptools simplejson six tensorboard tensorstore tifffile toolz torch "
    "tqdm treescope typing-extensions urllib3 wrapt zipp".split()
)
PLATFORMS = (
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux1_x86_64",
)


def define_flags() -> None:
  """The command's flags; defined only when this module is the program."""
  flags.DEFINE_string("output", str(CARRY_DIR), "Folder of the carried files.")


def _download(requirement: str, folder: pathlib.Path) -> bool:
  """A Python 3.12 manylinux (or pure-Python) wheel of one pinned requirement; False if none."""
  command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
  command += ["--python-version", "3.12", "--implementation", "cp", "-d", str(folder)]
  command += [f"--platform={platform}" for platform in PLATFORMS]
  return subprocess.run(command + [requirement], capture_output=True).returncode == 0


def _build_wheel(requirement: str, folder: pathlib.Path) -> None:
  """A wheel built here from a source distribution (e.g. `promise`, published as source only)."""
  command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(folder)]
  subprocess.run(command + [requirement], check=True)


def normalised(name: str) -> str:
  return re.sub(r"[-_.]+", "-", name).lower()


def needed_distributions() -> dict[str, str]:
  """`NEEDED` and everything they require (for Python 3.12 on Linux), at the versions installed
  here, less what the GPU image already has."""
  environment = {"python_version": "3.12", "sys_platform": "linux", "platform_system": "Linux"}
  found, queue = {}, list(NEEDED)
  while queue:
    name = normalised(queue.pop())
    if name in found or name in ON_DEVICE:
      continue
    distribution = metadata.distribution(name)
    found[name] = distribution.version
    for line in distribution.requires or []:
      requirement = requirements.Requirement(line)
      if requirement.marker is None or requirement.marker.evaluate(environment | {"extra": ""}):
        queue.append(requirement.name)
  return found


def download_wheels(folder: pathlib.Path) -> dict[str, str]:
  """Wheels of `needed_distributions()` and of `DATA_ONLY` (its dependencies left out)."""
  folder.mkdir(parents=True, exist_ok=True)
  pinned = needed_distributions() | {name: metadata.version(name) for name in DATA_ONLY}
  for name, version in sorted(pinned.items()):
    if not _download(f"{name}=={version}", folder):
      _build_wheel(f"{name}=={version}", folder)
  return pinned


def mvtb_files() -> list[str]:
  return [file for scene in photos.SCENES if scene.source == "mvtb" for file in scene.files]


def write_photos(output: pathlib.Path, files: Sequence[str]) -> dict[str, int]:
  """mvtb photographs as lossless WebP (RGB, as read), split into two halves by size."""
  source = photos.source_dir("mvtb")
  encoded = {}
  for file in files:
    webp = output / "photos_staging" / (file + ".webp")
    webp.parent.mkdir(parents=True, exist_ok=True)
    PIL.Image.fromarray(photos.load_photo(source / file)).save(webp, "WEBP", lossless=True)
    encoded[file] = webp
  halves = {"photos_a": [], "photos_b": []}
  sizes = {"photos_a": 0, "photos_b": 0}
  for file, webp in sorted(encoded.items(), key=lambda item: -item[1].stat().st_size):
    half = min(sizes, key=sizes.get)
    target = output / half / (file + ".webp")
    target.parent.mkdir(parents=True, exist_ok=True)
    webp.replace(target)
    halves[half].append(file)
    sizes[half] += target.stat().st_size
  for half, names in halves.items():
    (output / half / "manifest.json").write_text(json.dumps(sorted(names), indent=1))
  shutil.rmtree(output / "photos_staging")
  return sizes


def folder_bytes(folder: pathlib.Path) -> int:
  return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def main(argv: Sequence[str]) -> None:
  del argv
  output = pathlib.Path(flags.FLAGS.output)
  pinned = download_wheels(output / "wheels")
  print("wheels: " + ", ".join(f"{name} {version}" for name, version in sorted(pinned.items())))
  write_photos(output, mvtb_files())
  tree = sum(
      (REPO_ROOT / line).stat().st_size
      for line in subprocess.run(
          ["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
      ).stdout.splitlines()
      if (REPO_ROOT / line).is_file()
  )
  wheels = folder_bytes(output / "wheels")
  calls = {
      "stage (photos_a)": tree + folder_bytes(output / "photos_a"),
      "run (photos_b + wheels)": tree + folder_bytes(output / "photos_b") + wheels,
  }
  for call, size in calls.items():
    verdict = "fits" if size <= CARRY_LIMIT_BYTES else "DOES NOT FIT"
    print(f"call {call}: {size / 2**20:.1f} MiB with the working tree ({verdict} in 64 MiB)")
  print(
      "device commands (benchmarks/gpu/run.py):\n"
      "  1. carry .gpu_carry/photos_a:  python3 -m benchmarks.gpu.run --stage=.gpu_carry/photos_a\n"
      "  2. carry .gpu_carry/photos_b and .gpu_carry/wheels:  bash benchmarks/gpu/device.sh"
  )
  if any(size > CARRY_LIMIT_BYTES for size in calls.values()):
    sys.exit(1)


if __name__ == "__main__":
  define_flags()
  app.run(main)
