"""`synthetic_splice`: synthetic splicing / copy-move forgeries (paper 4.1.1)."""

from tfds_builders.synthetic_splice.synthetic_splice_dataset_builder import Builder
from tfds_builders.synthetic_splice.synthetic_splice_dataset_builder import SyntheticSpliceConfig
