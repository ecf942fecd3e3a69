"""The feature spec every forgery dataset emits, so the input pipeline can read and mix them all.

Images and masks must be handed to TFDS as PIL images or encoded bytes: TFDS encodes numpy arrays
with TensorFlow, which this project does not depend on.
"""

import numpy as np
import tensorflow_datasets as tfds

LABEL_NAMES = ("authentic", "manipulated")
MANIPULATION_TYPES = ("none", "splicing", "copy_move", "removal", "mixed", "unknown")


def forgery_features(**extra: tfds.features.FeatureConnector) -> tfds.features.FeaturesDict:
  """Standard features: `mask` is 1 where manipulated, 0 elsewhere (all zero for authentic images)."""
  return tfds.features.FeaturesDict(
      {
          "image": tfds.features.Image(shape=(None, None, 3), encoding_format="png"),
          "mask": tfds.features.Image(shape=(None, None, 1), encoding_format="png"),
          "label": tfds.features.ClassLabel(names=LABEL_NAMES),
          "manipulation_type": tfds.features.ClassLabel(names=MANIPULATION_TYPES),
          "original_size": tfds.features.Tensor(shape=(2,), dtype=np.int32),  # (height, width)
          "file_name": tfds.features.Text(),
          **extra,
      }
  )
