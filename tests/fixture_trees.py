"""Tiny copies of each manual-download dataset's folder tree, for the builder tests.

Every writer lays out files under the real names and conventions of its dataset (docs/method.md
section 5), including the known oddities, plus one broken file and one mask of the wrong size where
the dataset can have them. It returns what a correct builder must produce: every kept example with
its label, manipulation type and mask (1 = manipulated), the files that must be skipped, the split
names and the near-duplicate families that must share a split.
"""

import dataclasses
import pathlib

import numpy as np
from PIL import Image

from tfds_builders.casia import casia_dataset_builder
from tfds_builders.columbia import columbia_dataset_builder
from tfds_builders.comofod import comofod_dataset_builder
from tfds_builders.coverage import coverage_dataset_builder
from tfds_builders.defacto import defacto_dataset_builder
from tfds_builders.hled_synthetic import hled_synthetic_dataset_builder
from tfds_builders.ieee_ifs_tc import ieee_ifs_tc_dataset_builder
from tfds_builders.imd2020 import imd2020_dataset_builder
from tfds_builders.nist16 import nist16_dataset_builder

SIZE = 32  # fixture images are SIZE x SIZE
LOSSLESS = (".png", ".tif", ".bmp")
# Parts of the reason the build log must give for each kind of skipped file.
UNREADABLE, MISSING_MASK, SIZE_MISMATCH, ORPHAN_MASK = (
    "unreadable image",
    "missing mask",
    "image is 32x",
    "without",
)
NIST_HEADER = (
    "TaskID|ProbeFileID|ProbeFileName|ProbeMaskFileName|DonorFileID|DonorFileName|"
    "DonorMaskFileName|IsTarget|ProbePostProcessed|DonorPostProcessed|ManipulationQuality|"
    "IsManipulationTypeRemoval|IsManipulationTypeSplice|IsManipulationTypeCopyClone|Collection|"
    "BaseFileName|Lighting|IsControl|CorrespondingControlFileName|SemanticConsistency"
)


@dataclasses.dataclass
class Expected:
  label: int  # 0 authentic, 1 manipulated
  manipulation_type: str
  mask: np.ndarray  # bool (SIZE, SIZE), True = manipulated
  image: np.ndarray | None  # the exact pixels where the file is lossless


@dataclasses.dataclass
class FixtureTree:
  builder: type
  config: str | None
  examples: dict[str, Expected] = dataclasses.field(default_factory=dict)
  skipped: dict[str, str] = dataclasses.field(default_factory=dict)  # file name -> reason part
  splits: set[str] | None = None  # None: the seeded 70/5/25 split
  families: list[set[str]] = dataclasses.field(default_factory=list)


class Writer:
  """Writes images and masks under `root` and records what the builder must read back."""

  def __init__(self, root: pathlib.Path, tree: FixtureTree):
    self.root, self.tree = root, tree
    self._rng = np.random.default_rng(0)
    self._boxes = 0

  def path(self, name: str) -> pathlib.Path:
    path = self.root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path

  def image(self, name: str, size: tuple[int, int] = (SIZE, SIZE)) -> np.ndarray:
    pixels = self._rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    save(self.path(name), pixels)
    return pixels

  def box(self) -> np.ndarray:
    """A new 8-pixel-aligned rectangle (aligned so JPEG masks keep exact edges)."""
    index, self._boxes = self._boxes, self._boxes + 1
    mask = np.zeros((SIZE, SIZE), dtype=bool)
    top, left, height = (index // 4) % 4 * 8, index % 4 * 8, 8 + 8 * ((index // 16) % 2)
    mask[top : top + height, left : left + 8] = True
    return mask

  def broken(self, name: str) -> None:
    self.path(name).write_bytes(b"this is not an image file")

  def authentic(self, name: str) -> None:
    pixels = self.image(name)
    self.expect(name, 0, "none", np.zeros((SIZE, SIZE), dtype=bool), pixels)

  def expect(self, name: str, label: int, kind: str, mask: np.ndarray, pixels: np.ndarray):
    lossless = pathlib.Path(name).suffix.lower() in LOSSLESS
    self.tree.examples[name] = Expected(label, kind, mask, pixels if lossless else None)

  def skip(self, name: str, reason: str) -> None:
    self.tree.skipped[name] = reason


def save(path: pathlib.Path, pixels: np.ndarray) -> None:
  if path.suffix.lower() in (".jpg", ".jpeg"):
    Image.fromarray(pixels).save(path, quality=100, subsampling=0)
  else:
    Image.fromarray(pixels).save(path)


def grey(mask: np.ndarray, inside: int, outside: int) -> np.ndarray:
  return np.where(mask, inside, outside).astype(np.uint8)


def write_nist16(root: pathlib.Path) -> FixtureTree:
  """NC2016_Test0613 with '|' CSV, black-is-manipulated masks and scenes sharing base images.

  Each scene has an authentic control probe and manipulated probes linked to it by
  CorrespondingControlFileName and to a world base image by BaseFileName; scenes 0 and 1 (and 10
  and 11) share a base image, so each pair is one family.
  """
  tree = FixtureTree(nist16_dataset_builder.Builder, None)
  top = "NC2016_Test0613/"
  w = Writer(root, tree)
  rows = [NIST_HEADER]
  kinds = [
      ("Y", "N", "N", "removal"),
      ("N", "Y", "N", "splicing"),
      ("N", "N", "Y", "copy_move"),
      ("Y", "Y", "N", "mixed"),
  ]
  families = {}
  for scene in range(12):
    control = f"probe/NC2016_{scene:02d}00.jpg"
    w.authentic(top + control)
    rows.append(f"Manipulation|NC2016_{scene:02d}00|{control}|||||N|none|||N|N|N|Nimble-SCI|||Y||")
    base = f"world/NC2016_{ {1: 0, 11: 10}.get(scene, scene):02d}99.jpg"
    families.setdefault(base, set()).add(top + control)
    for variant in (1, 2):
      removal, splice, clone, kind = kinds[(scene + variant) % 4]
      probe = f"probe/NC2016_{scene:02d}0{variant}.jpg"
      mask_name = f"reference/manipulation/mask/NC2016_{scene:02d}5{variant}.png"
      pixels, mask = w.image(top + probe), w.box()
      save(w.path(top + mask_name), grey(mask, 0, 255))
      w.expect(top + probe, 1, kind, mask, pixels)
      families[base].add(top + probe)
      rows.append(
          f"Manipulation|NC2016_{scene:02d}0{variant}|{probe}|{mask_name}||||Y|none||"
          "simple|"
          f"{removal}|{splice}|{clone}|Nimble-SCI|{base}|same|N|{control}|"
      )
  bad = [
      ("probe/NC2016_9001.jpg", "reference/manipulation/mask/NC2016_9501.png"),  # broken probe
      ("probe/NC2016_9002.jpg", "reference/manipulation/mask/NC2016_9502.png"),  # mask 32x16
      ("probe/NC2016_9003.jpg", "reference/manipulation/mask/NC2016_9503.png"),
  ]  # no mask file
  w.broken(top + bad[0][0])
  save(w.path(top + bad[0][1]), grey(w.box(), 0, 255))
  w.image(top + bad[1][0])
  save(w.path(top + bad[1][1]), np.zeros((SIZE, SIZE // 2), np.uint8))
  w.image(top + bad[2][0])
  for (probe, mask_name), reason in zip(bad, (UNREADABLE, SIZE_MISMATCH, MISSING_MASK)):
    w.skip(top + probe, reason)
    rows.append(
        f"Manipulation|x|{probe}|{mask_name}||||Y|none||simple|N|Y|N|Nimble-SCI|"
        f"world/NC2016_9999.jpg|same|N||"
    )
  w.path(top + nist16_dataset_builder.REFERENCE_CSV).write_text("\n".join(rows) + "\n")
  tree.families = list(families.values())
  return tree


def write_ieee_ifs_tc(root: pathlib.Path) -> FixtureTree:
  """phase-01/training with pristine/ and fake/ + `<name>.mask.png`, in both polarities."""
  tree = FixtureTree(ieee_ifs_tc_dataset_builder.Builder, None)
  w = Writer(root, tree)
  top = "phase-01/training/"
  for index in range(6):
    w.authentic(f"{top}pristine/{index:032x}.png")
  for index in range(8):
    name, mask = f"{top}fake/{index + 100:032x}", w.box()
    pixels = w.image(name + ".png")
    inverted = index % 2 == 1  # white tampered part on black: the dark majority gets flipped
    save(w.path(name + ".mask.png"), grey(mask, 255, 0) if inverted else grey(mask, 0, 255))
    w.expect(name + ".png", 1, "unknown", mask, pixels)
  w.broken(f"{top}fake/{'b' * 32}.png")
  save(w.path(f"{top}fake/{'b' * 32}.mask.png"), grey(w.box(), 0, 255))
  w.image(f"{top}fake/{'c' * 32}.png")
  save(w.path(f"{top}fake/{'c' * 32}.mask.png"), np.zeros((SIZE // 2, SIZE), np.uint8))
  w.image(f"{top}fake/{'d' * 32}.png")  # no mask
  save(w.path(f"{top}fake/{'e' * 32}.mask.png"), grey(w.box(), 0, 255))  # no image
  for name, reason in (("b", UNREADABLE), ("c", SIZE_MISMATCH), ("d", MISSING_MASK)):
    w.skip(f"{top}fake/{name * 32}.png", reason)
  w.skip(f"{top}fake/{'e' * 32}.mask.png", ORPHAN_MASK)
  return tree


def write_coverage(root: pathlib.Path) -> FixtureTree:
  """COVERAGE/image/{N,Nt}.tif, mask/N{forged,copy,paste}.tif; grey noise below 125 in masks."""
  tree = FixtureTree(coverage_dataset_builder.Builder, None, splits={"test"})
  w = Writer(root, tree)
  for number in (1, 2, 3, 10):
    w.authentic(f"COVERAGE/image/{number}.tif")
    pixels, mask = w.image(f"COVERAGE/image/{number}t.tif"), w.box()
    forged = grey(mask, 200, 120)
    if number == 10:  # a 16-bit TIFF mask must be scaled to 8 bits before the threshold
      forged = forged.astype(np.uint16) * 257
    save(w.path(f"COVERAGE/mask/{number}forged.tif"), forged)
    save(w.path(f"COVERAGE/mask/{number}copy.tif"), grey(w.box(), 255, 0))
    save(w.path(f"COVERAGE/mask/{number}paste.tif"), grey(w.box(), 255, 0))
    w.expect(f"COVERAGE/image/{number}t.tif", 1, "copy_move", mask, pixels)
  w.authentic("COVERAGE/image/41.tif")
  w.image("COVERAGE/image/41t.tif")  # one of the listed size mismatches
  save(w.path("COVERAGE/mask/41forged.tif"), np.zeros((SIZE - 3, SIZE), np.uint8))
  w.broken("COVERAGE/image/42t.tif")
  save(w.path("COVERAGE/mask/42forged.tif"), grey(w.box(), 255, 0))
  w.image("COVERAGE/image/43t.tif")  # forged mask missing
  for name, reason in (("41t", SIZE_MISMATCH), ("42t", UNREADABLE), ("43t", MISSING_MASK)):
    w.skip(f"COVERAGE/image/{name}.tif", reason)
  w.path("COVERAGE/readme.txt").write_text("COVERAGE")
  return tree


def _casia_tampered(w: Writer, image: str, mask_dir: str, kind: str, gt: str = "_gt") -> None:
  stem = pathlib.Path(image).stem
  pixels, mask = w.image(image), w.box()
  save(w.path(f"{mask_dir}/{stem}{gt}.png"), grey(mask, 255, 0))
  w.expect(image, 1, kind, mask, pixels)


def write_casia_v2(root: pathlib.Path) -> FixtureTree:
  """CASIA2.0_revised Au/Tp with `CASIA 2 Groundtruth/<stem>_gt.png`, the `_gt3.png` oddity,
  a D-labelled copy-move, a transposed mask and a tampered image without mask."""
  tree = FixtureTree(casia_dataset_builder.Builder, "v2")
  w = Writer(root, tree)
  gt = "CASIA 2 Groundtruth"
  for index, category in enumerate(["ani", "arc", "art", "cha", "nat", "sec"]):
    w.authentic(f"CASIA2.0_revised/Au/Au_{category}_{index:05d}.jpg")
  tampered = [
      ("Tp_D_CND_M_N_ani00018_sec00096_00138.tif", "splicing"),
      ("Tp_D_CRN_S_N_art00032_nat00061_10154.jpg", "splicing"),
      ("Tp_S_NNN_S_N_art20077_art20077_01883.tif", "copy_move"),
      ("Tp_S_CRN_S_N_sec00012_sec00012_11230.jpg", "copy_move"),
      ("Tp_D_CNN_M_N_ind00091_ind00091_10647.jpg", "copy_move"),  # D but one source
      ("Tp_D_NRN_S_N_nat10130_pla00049_11524.tif", "splicing"),
  ]
  for name, kind in tampered:
    _casia_tampered(w, f"CASIA2.0_revised/Tp/{name}", gt, kind)
  _casia_tampered(
      w, "CASIA2.0_revised/Tp/Tp_D_NRD_S_N_cha10002_cha10001_20094.jpg", gt, "splicing", gt="_gt3"
  )
  # A mask named after the corrected file name (D -> S): it shares only the tamper index with its
  # image, and its name gives the type.
  pixels, mask = w.image("CASIA2.0_revised/Tp/Tp_D_CRN_M_N_txt00063_txt00017_10835.jpg"), w.box()
  save(w.path(f"{gt}/Tp_S_CRN_M_N_txt00063_txt00017_10835_gt.png"), grey(mask, 255, 0))
  w.expect(
      "CASIA2.0_revised/Tp/Tp_D_CRN_M_N_txt00063_txt00017_10835.jpg", 1, "copy_move", mask, pixels
  )
  w.image("CASIA2.0_revised/Tp/Tp_S_NRN_S_N_pla20080_pla20080_01980.tif", size=(SIZE, SIZE - 8))
  save(
      w.path(f"{gt}/Tp_S_NRN_S_N_pla20080_pla20080_01980_gt.png"),
      np.zeros((SIZE - 8, SIZE), np.uint8),
  )
  w.image("CASIA2.0_revised/Tp/Tp_D_CNN_M_N_sec00011_cha00085_11227.jpg")  # no mask
  w.broken("CASIA2.0_revised/Tp/Tp_D_CRN_S_N_ani10191_ani10190_12437.jpg")
  save(w.path(f"{gt}/Tp_D_CRN_S_N_ani10191_ani10190_12437_gt.png"), grey(w.box(), 255, 0))
  save(w.path(f"{gt}/Tp_D_NNN_S_N_xyz00001_xyz00002_00001_gt.png"), grey(w.box(), 255, 0))
  w.path("CASIA2.0_revised/Tp/Thumbs.db").write_bytes(b"\0" * 16)
  for name, reason in (
      ("Tp_S_NRN_S_N_pla20080_pla20080_01980.tif", SIZE_MISMATCH),
      ("Tp_D_CNN_M_N_sec00011_cha00085_11227.jpg", MISSING_MASK),
      ("Tp_D_CRN_S_N_ani10191_ani10190_12437.jpg", UNREADABLE),
  ):
    w.skip(f"CASIA2.0_revised/Tp/{name}", reason)
  w.skip(f"{gt}/Tp_D_NNN_S_N_xyz00001_xyz00002_00001_gt.png", ORPHAN_MASK)
  return tree


def write_casia_v1(root: pathlib.Path) -> FixtureTree:
  """CASIA 1.0 dataset/Modified Tp/Tp/{CM,Sp} with `CASIA 1.0 groundtruth/{CM,Sp}/<stem>_gt.png`."""
  tree = FixtureTree(casia_dataset_builder.Builder, "v1")
  w = Writer(root, tree)
  for index in range(5):
    w.authentic(f"CASIA 1.0 dataset/Au/Au_ani_{index + 1:04d}.jpg")
  for index in range(4):
    tampered = "CASIA 1.0 dataset/Modified Tp/Tp"
    _casia_tampered(
        w,
        f"{tampered}/Sp/Sp_D_CND_A_pla{index:04d}_ani{index:04d}_0{index:03d}.jpg",
        "CASIA 1.0 groundtruth/Sp",
        "splicing",
    )
    _casia_tampered(
        w,
        f"{tampered}/CM/Sp_S_CND_A_pla{index:04d}_pla{index:04d}_1{index:03d}.jpg",
        "CASIA 1.0 groundtruth/CM",
        "copy_move",
    )
  w.image("CASIA 1.0 dataset/Modified Tp/Tp/Sp/Sp_D_NNN_A_sec0001_sec0002_0999.jpg")
  save(
      w.path("CASIA 1.0 groundtruth/Sp/Sp_D_NNN_A_sec0001_sec0002_0999_gt.png"),
      np.zeros((SIZE, SIZE + 8), np.uint8),
  )
  w.skip("CASIA 1.0 dataset/Modified Tp/Tp/Sp/Sp_D_NNN_A_sec0001_sec0002_0999.jpg", SIZE_MISMATCH)
  return tree


def edgemask(mask: np.ndarray) -> np.ndarray:
  """Columbia colours: host camera red, spliced camera green, bright shades near the boundary."""
  rgb = np.zeros((*mask.shape, 3), dtype=np.uint8)
  rgb[~mask] = (200, 0, 0)
  rgb[mask] = (0, 200, 0)
  rgb[:, :8][~mask[:, :8]] = (255, 0, 0)
  rgb[:, :8][mask[:, :8]] = (0, 255, 0)
  return rgb


def write_columbia(root: pathlib.Path) -> FixtureTree:
  """4cam_auth/4cam_auth (doubled folder), 4cam_splc with colour JPEG edgemasks and decoys."""
  tree = FixtureTree(columbia_dataset_builder.Builder, None)
  w = Writer(root, tree)
  cameras = ["canong3", "canonxt", "kodakdcs330", "nikond70"]
  for index in range(5):
    w.authentic(f"4cam_auth/4cam_auth/{cameras[index % 4]}_{3 * index + 2:02d}_sub_01.tif")
  for index in range(6):
    stem = f"{cameras[index % 4]}_{cameras[(index + 1) % 4]}_sub_{index + 1:02d}"
    pixels, mask = w.image(f"4cam_splc/{stem}.tif"), w.box()
    save(w.path(f"4cam_splc/edgemask/{stem}_edgemask.jpg"), edgemask(mask))
    save(w.path(f"4cam_splc/edgemask/{stem}_edgemask_3.jpg"), edgemask(~mask))  # not the mask
    w.expect(f"4cam_splc/{stem}.tif", 1, "splicing", mask, pixels)
  w.image("4cam_splc/nikond70_canonxt_sub_30.tif")  # no edgemask
  w.image("4cam_splc/nikond70_canong3_sub_31.tif")
  save(
      w.path("4cam_splc/edgemask/nikond70_canong3_sub_31_edgemask.jpg"),
      np.zeros((SIZE + 8, SIZE, 3), np.uint8),
  )
  w.skip("4cam_splc/nikond70_canonxt_sub_30.tif", MISSING_MASK)
  w.skip("4cam_splc/nikond70_canong3_sub_31.tif", SIZE_MISMATCH)
  w.path("4cam_splc/README.txt").write_text("Columbia")
  return tree


def write_comofod(root: pathlib.Path) -> FixtureTree:
  """CoMoFoD_small_v2: NNN_{F,O,B,M} plus post-processed NNN_F_JC1 / NNN_O_BC1 copies."""
  tree = FixtureTree(comofod_dataset_builder.Builder, None)
  w = Writer(root, tree)
  top = "CoMoFoD_small_v2/"
  for number in range(1, 11):
    mask, family = w.box(), set()
    save(w.path(f"{top}{number:03d}_B.png"), grey(mask, 255, 0))
    save(w.path(f"{top}{number:03d}_M.png"), np.stack([grey(mask, 255, 0)] * 3, -1))
    for name in (f"{number:03d}_F.png", f"{number:03d}_F_JC1.jpg", f"{number:03d}_F_IB2.png"):
      w.expect(top + name, 1, "copy_move", mask, w.image(top + name))
      family.add(top + name)
    for name in (f"{number:03d}_O.png", f"{number:03d}_O_BC1.png"):
      w.authentic(top + name)
      family.add(top + name)
    tree.families.append(family)
  w.image(f"{top}011_F.png")  # no 011_B
  w.image(f"{top}012_F.png")
  save(w.path(f"{top}012_B.png"), np.zeros((SIZE, SIZE // 2), np.uint8))
  w.broken(f"{top}001_F_NA1.png")
  for name, reason in (
      ("011_F.png", MISSING_MASK),
      ("012_F.png", SIZE_MISMATCH),
      ("001_F_NA1.png", UNREADABLE),
  ):
    w.skip(top + name, reason)
  return tree


def write_imd2020(root: pathlib.Path) -> FixtureTree:
  """Folders `<id>/<id>_orig.jpg` with fakes `<x>_<k>.{jpg,png}` + `<x>_<k>_mask.png`, and the
  `<n>_fake.jpg` / `<n>_orig.jpg` naming of some folders; masks use 1 and 255 for "manipulated"."""
  tree = FixtureTree(imd2020_dataset_builder.Builder, None)
  w = Writer(root, tree)
  for index in range(8):
    folder = f"IMD2020/1a{index}ogs"
    w.authentic(f"{folder}/1a{index}ogs_orig.jpg")
    family = {f"{folder}/1a{index}ogs_orig.jpg"}
    for k, suffix in ((0, ".jpg"), (1, ".png")):
      name, mask = f"{folder}/c8tf{index}mq_{k}{suffix}", w.box()
      save(w.path(f"{folder}/c8tf{index}mq_{k}_mask.png"), grey(mask, 1 + 254 * k, 0))
      w.expect(name, 1, "unknown", mask, w.image(name))
      family.add(name)
    tree.families.append(family)
  w.authentic("IMD2020/z41/00109_orig.jpg")
  mask = w.box()
  save(w.path("IMD2020/z41/00109_fake_mask.png"), grey(mask, 255, 0))
  w.expect("IMD2020/z41/00109_fake.jpg", 1, "unknown", mask, w.image("IMD2020/z41/00109_fake.jpg"))
  w.image("IMD2020/99zz/x_0.jpg")
  save(w.path("IMD2020/99zz/x_0_mask.png"), np.zeros((SIZE // 2, SIZE), np.uint8))
  w.image("IMD2020/99zz/x_1.png")  # no mask
  w.skip("IMD2020/99zz/x_0.jpg", SIZE_MISMATCH)
  w.skip("IMD2020/99zz/x_1.png", MISSING_MASK)
  return tree


def write_defacto(root: pathlib.Path) -> FixtureTree:
  """`copymove_img/img/<n>_<COCO id>.tif` + `copymove_annotations/probe_mask/<same>.jpg` (JPEG
  masks), `splicing_1_*`, and the `<type>-images` naming with a .tif probe mask."""
  tree = FixtureTree(defacto_dataset_builder.Builder, None)
  w = Writer(root, tree)
  parts = [
      ("copymove_img", "copymove_annotations", "copy_move", ".jpg"),
      ("splicing_1_img", "splicing_1_annotations", "splicing", ".jpg"),
      ("inpainting-images", "inpainting-annotations", "removal", ".tif"),
  ]
  for part, (images, annotations, kind, mask_suffix) in enumerate(parts):
    for index in range(4):
      stem = f"{index + 10 * part}_{index * 7919 + 71:012d}"  # same COCO photograph in each part
      name, mask = f"{images}/img/{stem}.tif", w.box()
      save(w.path(f"{annotations}/probe_mask/{stem}{mask_suffix}"), grey(mask, 255, 0))
      save(w.path(f"{annotations}/donor_mask/{stem}.tif"), grey(w.box(), 255, 0))
      w.expect(name, 1, kind, mask, w.image(name))
  tree.families = [
      {name for name in tree.examples if name.endswith(f"{coco:012d}.tif")}
      for coco in (index * 7919 + 71 for index in range(4))
  ]
  w.image("copymove_img/img/9_000000000009.tif")  # no probe mask
  w.image("splicing_1_img/img/9_000000000010.tif")
  save(
      w.path("splicing_1_annotations/probe_mask/9_000000000010.jpg"),
      np.zeros((SIZE, SIZE + 16), np.uint8),
  )
  w.broken("inpainting-images/img/9_000000000011.tif")
  save(w.path("inpainting-annotations/probe_mask/9_000000000011.tif"), grey(w.box(), 255, 0))
  w.skip("copymove_img/img/9_000000000009.tif", MISSING_MASK)
  w.skip("splicing_1_img/img/9_000000000010.tif", SIZE_MISMATCH)
  w.skip("inpainting-images/img/9_000000000011.tif", UNREADABLE)
  return tree


def write_hled_synthetic(root: pathlib.Path) -> FixtureTree:
  """spliced_nist/ and copymove_nist/ of `N_rgb.png` + `N_mask.png` (255 - alpha, soft edges)."""
  tree = FixtureTree(hled_synthetic_dataset_builder.Builder, None)
  w = Writer(root, tree)
  for folder, kind in (("spliced_nist", "splicing"), ("copymove_nist", "copy_move")):
    for index in range(5):
      mask = w.box()
      soft = np.full((SIZE, SIZE), 255, np.uint8)
      soft[np.roll(mask, 1, axis=1) | np.roll(mask, -1, axis=1)] = 180  # faint edge: not spliced
      soft[mask] = 100  # partly transparent paste: spliced
      soft[mask & np.roll(mask, 1, 0) & np.roll(mask, -1, 0)] = 0
      save(w.path(f"{folder}/{index}_mask.png"), soft)
      w.expect(f"{folder}/{index}_rgb.png", 1, kind, mask, w.image(f"{folder}/{index}_rgb.png"))
  w.image("spliced_nist/7_rgb.png")  # no mask
  w.image("spliced_nist/8_rgb.png")
  save(w.path("spliced_nist/8_mask.png"), np.zeros((SIZE - 1, SIZE), np.uint8))
  save(w.path("copymove_nist/9_mask.png"), grey(w.box(), 0, 255))  # no image
  w.skip("spliced_nist/7_rgb.png", MISSING_MASK)
  w.skip("spliced_nist/8_rgb.png", SIZE_MISMATCH)
  w.skip("copymove_nist/9_mask.png", ORPHAN_MASK)
  return tree


WRITERS = {
    "nist16": write_nist16,
    "ieee_ifs_tc": write_ieee_ifs_tc,
    "coverage": write_coverage,
    "casia/v1": write_casia_v1,
    "casia/v2": write_casia_v2,
    "columbia": write_columbia,
    "comofod": write_comofod,
    "imd2020": write_imd2020,
    "defacto": write_defacto,
    "hled_synthetic": write_hled_synthetic,
}
