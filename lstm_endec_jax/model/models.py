"""LSTM-EnDec (Bappy et al., TIP 2019) and the baselines of its tables, as Flax Linen modules.

One module, `LSTMEnDec`, covers every variant; `model_config(variant)` gives the field values and
`create_model` builds the module from them. Variants:

  paper     the network as the paper describes it (section 3).
  hled      the authors' TF1 code (`Codes/train.py`), see docs/method.md section 4.
  endec     "Encoder-Decoder" baseline (SegNet [6]): the encoder and a mirrored decoder of four
            x2 upsampling stages, no LSTM, no resampling features.
  endec_x4  "EnDec" baseline ("similar to encoder-decoder with upsampling factor of 4"): the
            paper's own two-stage x4 decoder on the encoder alone, i.e. LSTM-EnDec minus the LSTM.
  fcn       "FCN" baseline [55]: the encoder with FCN's score layers and one skip.

The paper's upsampling in the decoder has "no learnable parameters"; SegNet's max-unpooling and
FCN's learned deconvolutions are replaced by the same fixed upsampling so that the baselines differ
from LSTM-EnDec only in the parts the paper's tables compare.
"""

import functools
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from lstm_endec_jax.model import features as features_lib
from lstm_endec_jax.model import layers

VARIANTS = ("paper", "hled", "endec", "endec_x4", "fcn")
# The input side every variant is built for: an 8x8 grid of 32x32 patches for the resampling
# features, and four 2x2 poolings the decoder undoes (paper 3.1, 3.2).
IMAGE_SIZE = 256
DECODER_KINDS = ("upsample_conv", "fcn")
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def model_config(variant: str) -> ml_collections.ConfigDict:
  """Field values of `LSTMEnDec` for a named variant (the `config.model` section)."""
  if variant not in VARIANTS:
    raise ValueError(f"unknown model variant {variant!r}; expected one of {VARIANTS}")
  c = ml_collections.ConfigDict()
  c.variant = variant
  c.num_classes = 2
  # Pixels 0..255 are multiplied by this before the encoder. Not stated in the paper; HLED divides
  # by 127 (its images were int8 clipped to 0..127). Resampling features are scale invariant.
  c.input_scale = 1.0 / 255.0
  c.dtype = "float32"  # compute dtype; "bfloat16" for GPUs. Params and logits stay float32.

  c.encoder_features = (32, 64, 128, 256)  # paper 3.2 and HLED
  # 1x1 conv+BN+ReLU reducing the encoder's last maps before fusion; 0 = none (paper: not stated).
  c.encoder_top_features = 0

  c.use_lstm_branch = True
  c.patch_order = "hilbert"  # "hilbert" | "raster" | "column" (paper's ordering ablation)
  # Paper 3.1.3 says both "we choose Nh = 128" and "we obtain 64 dimensional feature vector from
  # each time step in the last layer". We take Nh = 128: it is the explicit hyper-parameter
  # statement, in the notation of eq. (1); the 64-dim reading is HLED's (preset `hled`).
  c.lstm_hidden_size = 128
  c.lstm_num_layers = 2
  c.lstm_dropout_rate = 0.0  # paper: none stated
  c.lstm_maps = 64  # Nf, paper 3.1.3
  # Eq. (1) writes W_l, B_l with the step index but calls them "a weight matrix"; we read it as one
  # shared matrix ("shared", docs/method.md section 4). "per_position" is HLED's separate matrix per
  # grid cell.
  c.projection = "shared"
  c.lstm_map_norm = False  # BN+ReLU after the projection (HLED); eq. (1) is a plain affine map.

  c.upsampling = "bilinear"  # "bilinear" | "bilinear_deconv" (HLED's fixed transposed conv)
  c.decoder_kind = "upsample_conv"  # "upsample_conv" | "fcn"
  # Paper 3.3: two decoders of 64 and 16 maps with 3x3 convs, then 2 heat maps. Two upsamplings
  # take the 16x16 fused maps to 256x256, hence x4 each (the baseline "EnDec" names the factor).
  c.decoder_features = (64, 16)
  c.decoder_upsampling_factors = (4, 4)
  c.decoder_kernel_size = 3
  c.classifier_kernel_size = 3  # final conv to num_classes maps; 0 = none

  c.batch_norm_momentum = 0.9
  c.batch_norm_epsilon = 1e-5
  c.batch_norm_scale = True

  if variant == "hled":
    c.input_scale = 1.0 / 127.0
    c.encoder_top_features = 32  # conv_top: 1x1 256 -> 32, BN, ReLU
    # 2 x BasicLSTMCell(64). TF's cell adds forget_bias=1.0, flax's OptimizedLSTMCell does not:
    # an initialisation difference only (the same bias parameters exist and are trained).
    c.lstm_hidden_size = 64
    c.lstm_dropout_rate = 0.1  # DropoutWrapper(output_keep_prob=0.9) on each layer
    c.lstm_maps = 32
    c.projection = "per_position"
    c.lstm_map_norm = True
    c.upsampling = "bilinear_deconv"
    # x4 -> conv1x1 64 -> 2 + BN + ReLU -> x4. HLED applies two BatchNorms in a row there
    # (normalizer_fn and an explicit batch_norm); with one ReLU after both they are one affine
    # map per channel, so one is kept. The ReLU on the class maps is HLED's and is kept too.
    c.decoder_features = (2,)
    c.decoder_kernel_size = 1
    c.classifier_kernel_size = 0
    c.batch_norm_epsilon = 1e-3  # slim.batch_norm defaults: epsilon 1e-3, no scale (gamma)
    c.batch_norm_scale = False
  elif variant == "endec":
    c.use_lstm_branch = False
    # SegNet mirrors the encoder: one x2 stage per pooling, widths of the encoder stage at that
    # resolution (32x32: 256 ... 256x256: 32).
    c.decoder_features = (256, 128, 64, 32)
    c.decoder_upsampling_factors = (2, 2, 2, 2)
  elif variant == "endec_x4":
    c.use_lstm_branch = False
  elif variant == "fcn":
    c.use_lstm_branch = False
    c.decoder_kind = "fcn"
  return c


class LSTMEnDec(nn.Module):
  """Images (B, H, W, 3) pixel values 0..255 -> per-pixel class logits (B, H, W, num_classes).

  Encoder maps and (when `use_lstm_branch`) the upsampled LSTM maps are concatenated and decoded.
  Class 1 = manipulated. Logits are float32 whatever the compute dtype.
  """

  num_classes: int
  input_scale: float
  encoder_features: Sequence[int]
  encoder_top_features: int
  use_lstm_branch: bool
  patch_order: str
  lstm_hidden_size: int
  lstm_num_layers: int
  lstm_dropout_rate: float
  lstm_maps: int
  projection: str
  lstm_map_norm: bool
  upsampling: str
  decoder_kind: str
  decoder_features: Sequence[int]
  decoder_upsampling_factors: Sequence[int]
  decoder_kernel_size: int
  classifier_kernel_size: int
  batch_norm_momentum: float
  batch_norm_epsilon: float
  batch_norm_scale: bool
  dtype: jnp.dtype = jnp.float32
  axis_name: str | None = None

  @nn.compact
  def __call__(self, images: jax.Array, *, train: bool) -> jax.Array:
    conv, norm = layer_constructors(self, train=train)
    image_size = images.shape[1]
    pixels = images.astype(jnp.float32)

    stage_outputs = encoder_of(self, conv, norm)((pixels * self.input_scale).astype(self.dtype))
    if self.decoder_kind == "fcn":
      if self.use_lstm_branch:
        raise ValueError(
            "decoder_kind 'fcn' has no fusion point for the LSTM branch; "
            "set use_lstm_branch=False"
        )
      logits = layers.FCNHead(self.num_classes, self.upsampling, conv, name="fcn_head")(
          stage_outputs, image_size
      )
      return self._checked_logits(logits, images)
    if self.decoder_kind != "upsample_conv":
      raise ValueError(f"unknown decoder kind {self.decoder_kind!r}; expected {DECODER_KINDS}")

    x = stage_outputs[-1]
    if self.encoder_top_features:
      x = conv(self.encoder_top_features, (1, 1), use_bias=False, name="encoder_top")(x)
      x = nn.relu(norm(name="encoder_top_norm")(x))
    if self.use_lstm_branch:
      patch_features = features_lib.resampling_features(pixels)
      lstm_maps = layers.LSTMBranch(
          hidden_size=self.lstm_hidden_size,
          num_layers=self.lstm_num_layers,
          num_maps=self.lstm_maps,
          patch_order_name=self.patch_order,
          projection=self.projection,
          dropout_rate=self.lstm_dropout_rate,
          norm=norm if self.lstm_map_norm else None,
          dtype=self.dtype,
          name="lstm_branch",
      )(patch_features, train=train)
      # 8x8 -> the encoder's 16x16 with the fixed upsampling (paper: not stated; HLED: x2
      # bilinear), then concatenated, encoder maps first as in HLED (paper: 256 + Nf maps).
      lstm_maps = layers.upsample(lstm_maps, x.shape[1] // lstm_maps.shape[1], self.upsampling)
      x = jnp.concatenate([x, lstm_maps.astype(x.dtype)], axis=-1)
    logits = decoder_of(self, conv, norm)(x)
    return self._checked_logits(logits, images)

  def _checked_logits(self, logits: jax.Array, images: jax.Array) -> jax.Array:
    if logits.shape[1:3] != images.shape[1:3]:
      raise ValueError(
          f"logits are {logits.shape[1]}x{logits.shape[2]} for {images.shape[1]}x"
          f"{images.shape[2]} images: the decoder's upsampling factors "
          f"{tuple(self.decoder_upsampling_factors)} must undo the encoder's "
          f"{len(self.encoder_features)} poolings (x{2 ** len(self.encoder_features)})"
      )
    return logits.astype(jnp.float32)


def layer_constructors(model: LSTMEnDec, *, train: bool) -> tuple[layers.ModuleDef, ...]:
  """(conv, norm): the constructors of the network's convolutions and BatchNorms, with the compute
  dtype and BatchNorm's mode decided once. Training: batch statistics (averaged over `axis_name`
  under shard_map) and running-average updates; evaluation: the running averages."""
  conv = functools.partial(layers.Conv, dtype=model.dtype)
  norm = functools.partial(
      nn.BatchNorm,
      use_running_average=not train,
      momentum=model.batch_norm_momentum,
      epsilon=model.batch_norm_epsilon,
      use_scale=model.batch_norm_scale,
      axis_name=model.axis_name,
      dtype=model.dtype,
  )
  return conv, norm


# The encoder and the upsampling decoder of `model`, as it builds them (`benchmarks/train_step.py`
# also times each alone). Called inside `LSTMEnDec.__call__` they become its submodules.
def encoder_of(model: LSTMEnDec, conv: layers.ModuleDef, norm: layers.ModuleDef) -> nn.Module:
  return layers.Encoder(model.encoder_features, conv, norm, name="encoder")


def decoder_of(model: LSTMEnDec, conv: layers.ModuleDef, norm: layers.ModuleDef) -> nn.Module:
  return layers.Decoder(
      features=model.decoder_features,
      factors=model.decoder_upsampling_factors,
      kernel_size=model.decoder_kernel_size,
      classifier_kernel_size=model.classifier_kernel_size,
      num_classes=model.num_classes,
      upsampling=model.upsampling,
      conv=conv,
      upsampled_conv=functools.partial(
          layers.UpsampledConv, kind=model.upsampling, dtype=model.dtype
      ),
      norm=norm,
      name="decoder",
  )


def create_model(
    model_config: ml_collections.ConfigDict, *, axis_name: str | None = None
) -> nn.Module:
  """The `LSTMEnDec` module for a `model_config(...)` section (possibly overridden).

  `axis_name`: the shard_map mesh axis over which BatchNorm averages its training statistics.
  """
  fields = model_config.to_dict()
  fields.pop("variant")
  dtype = fields.pop("dtype")
  if dtype not in DTYPES:
    raise ValueError(f"unknown model dtype {dtype!r}; expected one of {tuple(DTYPES)}")
  for name in ("encoder_features", "decoder_features", "decoder_upsampling_factors"):
    fields[name] = tuple(fields[name])
  return LSTMEnDec(**fields, dtype=DTYPES[dtype], axis_name=axis_name)


def saved_model_config(
    section: ml_collections.ConfigDict | dict[str, Any],
) -> ml_collections.ConfigDict:
  """A run's saved `model` section over its variant's current defaults, so that fields added to
  the model since the run was trained keep their defaults."""
  section = dict(section)
  model_config_ = model_config(section["variant"])
  model_config_.update(section)
  return model_config_


def initial_variables(
    model_config_: ml_collections.ConfigDict, rng: jax.Array, *, image_size: int = IMAGE_SIZE
) -> dict[str, Any]:
  """Params and batch statistics of a fresh model (on the host's first device). Only the
  variants without the LSTM branch run on other sizes than IMAGE_SIZE (multiples of 16)."""
  model = create_model(model_config_)
  return jax.jit(functools.partial(model.init, train=False))(rng, _blank_images(image_size))


def variable_shapes(model: nn.Module) -> dict[str, Any]:
  """Shapes and dtypes of `model`'s variables, without computing them."""
  return dict(
      jax.eval_shape(lambda: model.init(jax.random.key(0), _blank_images(IMAGE_SIZE), train=False))
  )


def _blank_images(size: int) -> jax.Array:
  """One black (1, size, size, 3) uint8 image: the input that fixes a model's variable shapes."""
  return jnp.zeros((1, size, size, 3), jnp.uint8)


def probabilities(model: nn.Module, variables: dict[str, Any], images: jax.Array) -> jax.Array:
  """P(manipulated) per pixel, (B, H, W) float32, with BatchNorm's running averages: class 1 of
  the softmax over the model's two logits. The one forward pass of evaluation and inference."""
  logits = model.apply(variables, images, train=False)
  return jax.nn.softmax(logits.astype(jnp.float32), axis=-1)[..., 1]
