"""TFDS dataset builders; importing this package registers every builder with TFDS."""

from tfds_builders.casia import casia_dataset_builder  # noqa: F401
from tfds_builders.columbia import columbia_dataset_builder  # noqa: F401
from tfds_builders.comofod import comofod_dataset_builder  # noqa: F401
from tfds_builders.coverage import coverage_dataset_builder  # noqa: F401
from tfds_builders.defacto import defacto_dataset_builder  # noqa: F401
from tfds_builders.hled_synthetic import hled_synthetic_dataset_builder  # noqa: F401
from tfds_builders.ieee_ifs_tc import ieee_ifs_tc_dataset_builder  # noqa: F401
from tfds_builders.imd2020 import imd2020_dataset_builder  # noqa: F401
from tfds_builders.nist16 import nist16_dataset_builder  # noqa: F401
from tfds_builders.own_forgeries import own_forgeries_dataset_builder  # noqa: F401
from tfds_builders.synthetic_splice import synthetic_splice_dataset_builder  # noqa: F401
