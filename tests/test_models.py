"""Tests of the LSTM-EnDec network and its baselines (lstm_endec_jax/model/models.py, layers.py).

Inputs are 256x256 (fixed by the resampling features); widths are tiny so that every variant
compiles and runs in about a second on a CPU core.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import flax.linen as nn
import optax
import pytest
from clu import parameter_overview
from jax.sharding import Mesh, PartitionSpec as P

from lstm_endec_jax.model import layers, models, patch_order

IMAGE_SHAPE = (2, 256, 256, 3)


# Tests need correct programs, not fast ones: XLA's backend optimisations off cut compile time ~35%.
jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})


def rng(seed: int) -> jax.Array:
  """An "rbg" key: initialising with it compiles ~5x faster on CPU than with threefry."""
  return jax.random.key(seed, impl="rbg")


def tiny_config(variant: str, **overrides):
  """`variant`'s structure with every width cut to 2-4 maps."""
  config = models.model_config(variant)
  config.encoder_features = (4, 4, 4, 4)
  config.lstm_hidden_size = 4
  config.lstm_maps = 3
  if config.encoder_top_features:
    config.encoder_top_features = 3
  if config.classifier_kernel_size:  # otherwise the last stage holds the class maps
    config.decoder_features = (3,) * len(config.decoder_features)
  config.update(overrides)
  return config


def random_images(seed: int = 0, shape=IMAGE_SHAPE) -> np.ndarray:
  return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def toy_masks(shape=IMAGE_SHAPE[:3]) -> np.ndarray:
  masks = np.zeros(shape, np.int32)
  masks[:, 64:160, 96:224] = 1
  return masks


@functools.cache
def tiny_model_and_variables(variant: str, **overrides):
  model = models.create_model(tiny_config(variant, **overrides))
  variables = jit(functools.partial(model.init, train=False))(rng(0), random_images())
  return model, variables


def train_apply(model, variables, images, seed=0):
  return model.apply(
      variables, images, train=True, rngs={"dropout": rng(seed)}, mutable=["batch_stats"]
  )


def cross_entropy(logits, masks):
  # One-hot targets: the integer-label form's gradient is a scatter XLA tries to constant-fold.
  return optax.softmax_cross_entropy(logits, jax.nn.one_hot(masks, 2)).mean()


@functools.cache
def train_and_eval_pass(variant: str):
  """One jitted pass of a tiny `variant`: train logits, BN updates, gradients, eval logits."""
  model, variables = tiny_model_and_variables(variant)

  @jit
  def run(variables, images, masks, dropout_seed):
    def loss_fn(params):
      logits, updates = train_apply(
          model, {**variables, "params": params}, images, seed=dropout_seed
      )
      return cross_entropy(logits, masks), (logits, updates)

    grads, (logits, updates) = jax.grad(loss_fn, has_aux=True)(variables["params"])
    eval_logits = model.apply(variables, images, train=False, rngs={"dropout": rng(dropout_seed)})
    return logits, updates, grads, eval_logits

  # Arrays enter as arguments: closed-over constants would be constant-folded at compile time.
  return functools.partial(run, variables, random_images(1), toy_masks())


@pytest.mark.parametrize("variant", models.VARIANTS)
def test_output_shape_and_dtype_train_and_eval(variant):
  _, variables = tiny_model_and_variables(variant)
  assert set(variables) == {"params", "batch_stats"}
  logits, updates, _, eval_logits = train_and_eval_pass(variant)(0)
  assert set(updates) == {"batch_stats"}
  for out in (logits, eval_logits):
    assert out.shape == (2, 256, 256, 2)
    assert out.dtype == jnp.float32
    assert np.all(np.isfinite(out))


@pytest.mark.parametrize("variant", models.VARIANTS)
def test_one_gradient_step_reaches_every_parameter(variant):
  _, _, grads, _ = train_and_eval_pass(variant)(0)
  for path, grad in jax.tree_util.tree_leaves_with_path(grads):
    name = jax.tree_util.keystr(path)
    assert np.all(np.isfinite(grad)), name
    assert np.any(grad != 0), name


def test_bfloat16_compute_keeps_float32_params_and_logits():
  model = models.create_model(tiny_config("hled", dtype="bfloat16"))
  images = jax.ShapeDtypeStruct(IMAGE_SHAPE, jnp.uint8)
  variables = jax.eval_shape(functools.partial(model.init, train=False), rng(0), images)
  dtypes = {leaf.dtype for leaf in jax.tree_util.tree_leaves(variables)}
  assert dtypes == {jnp.dtype(jnp.float32)}
  forward = jax.jit(functools.partial(model.apply, train=False))
  assert "bf16" in forward.lower(variables, images).as_text()
  assert jax.eval_shape(forward, variables, images).dtype == jnp.float32


def _bfloat16_sum_sizes(jaxpr: jax.extend.core.Jaxpr):
  """Terms per output element of every bfloat16 reduce_sum, nested programs included."""
  for eqn in jaxpr.eqns:
    if eqn.primitive.name == "reduce_sum" and eqn.invars[0].aval.dtype == jnp.bfloat16:
      yield eqn.invars[0].aval.size // max(eqn.outvars[0].aval.size, 1)
    for param in eqn.params.values():
      for sub in param if isinstance(param, (tuple, list)) else (param,):
        if isinstance(sub, jax.extend.core.ClosedJaxpr):
          yield from _bfloat16_sum_sizes(sub.jaxpr)
        elif isinstance(sub, jax.extend.core.Jaxpr):
          yield from _bfloat16_sum_sizes(sub)


@pytest.mark.parametrize("variant", models.VARIANTS)
def test_bfloat16_gradients_sum_no_image_in_bfloat16(variant):
  """XLA keeps a bfloat16 sum in bfloat16, which stalls over many terms (see `layers.Conv`): no
  gradient may sum more terms in bfloat16 than the LSTM's batch x 64 patch positions."""
  model = models.create_model(tiny_config(variant, dtype="bfloat16"))
  images = jax.ShapeDtypeStruct(IMAGE_SHAPE, jnp.uint8)
  variables = jax.eval_shape(functools.partial(model.init, train=False), rng(0), images)

  def loss(params, state, images):
    logits, _ = train_apply(model, {**state, "params": params}, images)
    return cross_entropy(logits, toy_masks())

  state = {name: value for name, value in variables.items() if name != "params"}
  jaxpr = jax.make_jaxpr(jax.grad(loss))(variables["params"], state, images).jaxpr
  assert max(_bfloat16_sum_sizes(jaxpr), default=0) <= IMAGE_SHAPE[0] * 64


def test_eval_is_deterministic_and_train_uses_dropout_rng():
  run = train_and_eval_pass("hled")  # LSTM output dropout 0.1
  (train_1, _, _, eval_1), (train_2, _, _, eval_2) = run(1), run(2)
  np.testing.assert_array_equal(eval_1, eval_2)
  assert not np.allclose(train_1, train_2)


def hand_count_paper_parameters() -> int:
  """The full `paper` network's parameters, counted from section 3 of the paper."""

  def encoder_stage(c_in, c):  # conv3x3 (no bias) + BN, res unit: BN, conv, BN, conv (+bias)
    return 9 * c_in * c + 2 * c + 2 * c + 9 * c * c + 2 * c + 9 * c * c + c

  encoder = sum(encoder_stage(c_in, c) for c_in, c in [(3, 32), (32, 64), (64, 128), (128, 256)])

  def lstm_layer(n_in, n_h):  # 4 gates: input kernel, recurrent kernel, bias
    return 4 * (n_in * n_h + n_h * n_h + n_h)

  lstm = lstm_layer(240, 128) + lstm_layer(128, 128)
  projection = 128 * 64 + 64  # shared W (Nh x Nf) and B
  decoder = (
      9 * (256 + 64) * 64
      + 2 * 64  # x4, conv3x3 -> 64, BN
      + 9 * 64 * 16
      + 2 * 16  # x4, conv3x3 -> 16, BN
      + 9 * 16 * 2
      + 2
  )  # conv3x3 -> 2 heat maps
  return encoder + lstm + projection + decoder


# Full-size parameter counts (reported in the issue note); `paper` is also counted by hand below.
EXPECTED_PARAMETERS = {
    "paper": 2_480_770,
    "hled": 2_207_138,
    "endec": 2_936_450,
    "endec_x4": 2_115_138,
    "fcn": 1_958_788,
}


@pytest.mark.parametrize("variant", models.VARIANTS)
def test_full_size_parameter_counts(variant):
  model = models.create_model(models.model_config(variant))
  variables = jax.eval_shape(
      functools.partial(model.init, train=False),
      rng(0),
      jax.ShapeDtypeStruct((1, 256, 256, 3), jnp.uint8),
  )
  count = parameter_overview.count_parameters(variables["params"])
  assert count == EXPECTED_PARAMETERS[variant]
  if variant == "paper":
    assert count == hand_count_paper_parameters()


def lstm_maps(model, variables, images):
  """The LSTM branch's (B, 8, 8, Nf) maps, before upsampling and fusion."""
  _, state = model.apply(
      variables,
      images,
      train=False,
      capture_intermediates=lambda module, _: module.name == "lstm_branch",
  )
  (maps,) = state["intermediates"]["lstm_branch"]["__call__"]
  return maps


@pytest.mark.parametrize("order_name", ["hilbert", "raster", "column"])
def test_lstm_maps_keep_the_spatial_identity_of_patches(order_name):
  """Perturbing patch p changes exactly the maps of p and of the patches fed after it.

  The `paper` maps (no BN+ReLU after the projection, whose dead units would hide changes).
  """
  _, variables = tiny_model_and_variables("paper")
  model = models.create_model(tiny_config("paper", patch_order=order_name))
  order = patch_order.patch_order(order_name, 8)
  step_of_patch = patch_order.inverse_permutation(order)
  steps = (63, 40)  # the last patch fed, and one in the middle of the sequence
  images = np.repeat(random_images(3, (1, 256, 256, 3)), 1 + len(steps), axis=0)
  for i, step in enumerate(steps, start=1):
    row, col = divmod(int(order[step]), 8)
    images[i, 32 * row : 32 * row + 32, 32 * col : 32 * col + 32] = random_images(4, (32, 32, 3))
  maps = np.asarray(jit(functools.partial(lstm_maps, model))(variables, images))
  for i, step in enumerate(steps, start=1):
    changed = np.any(maps[i] != maps[0], axis=-1)
    np.testing.assert_array_equal(changed, (step_of_patch >= step).reshape(8, 8))
    assert changed.reshape(-1)[order[step]]


def test_loss_decreases_on_a_fixed_batch():
  model, variables = tiny_model_and_variables("paper")
  images = random_images(6)
  masks = np.zeros(images.shape[:3], np.int32)
  masks[0, :128] = 1
  masks[1, :, 100:200] = 1
  optimizer = optax.adam(1e-2)

  @jit
  def step(params, batch_stats, opt_state, images, masks):
    def loss_fn(params):
      logits, updates = train_apply(model, {"params": params, "batch_stats": batch_stats}, images)
      return cross_entropy(logits, masks), updates["batch_stats"]

    (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = optimizer.update(grads, opt_state)
    return optax.apply_updates(params, updates), batch_stats, opt_state, loss

  params, batch_stats = variables["params"], variables["batch_stats"]
  opt_state = optimizer.init(params)
  losses = []
  for _ in range(6):
    params, batch_stats, opt_state, loss = step(params, batch_stats, opt_state, images, masks)
    losses.append(float(loss))
  assert losses[-1] < 0.9 * losses[0], losses


def test_batch_norm_updates_running_stats_in_train_and_uses_them_in_eval():
  model, variables = tiny_model_and_variables("endec_x4")
  images = random_images(7)

  @jit
  def train_outputs(variables, images):
    logits, state = model.apply(
        variables,
        images,
        train=True,
        capture_intermediates=True,
        mutable=["batch_stats", "intermediates"],
    )
    (conv_out,) = state["intermediates"]["encoder"]["Conv_0"]["__call__"]
    return logits, state["batch_stats"], conv_out

  evaluate = jit(functools.partial(model.apply, train=False))
  logits, batch_stats, conv_out = train_outputs(variables, images)
  # Running mean of the first BatchNorm: momentum * 0 + (1 - momentum) * batch mean of its input.
  momentum = tiny_config("endec_x4").batch_norm_momentum
  np.testing.assert_allclose(
      batch_stats["encoder"]["BatchNorm_0"]["mean"],
      (1 - momentum) * np.mean(conv_out, axis=(0, 1, 2)),
      rtol=1e-5,
      atol=1e-7,
  )
  trained = {**variables, "batch_stats": batch_stats}
  eval_logits = evaluate(trained, images)
  assert not np.allclose(eval_logits, evaluate(variables, images))
  # Eval: an image's logits do not depend on the rest of the batch; train: they do.
  swapped = images[::-1]
  np.testing.assert_allclose(evaluate(trained, swapped)[::-1], eval_logits, rtol=1e-5, atol=1e-5)
  alone, _, _ = train_outputs(variables, np.concatenate([images[:1], images[:1]]))
  assert not np.allclose(alone[:1], logits[:1], atol=1e-3)


def test_shard_map_batch_norm_statistics_match_the_full_batch():
  """Two devices with one image each and axis_name="data" normalise like one device with both."""
  _, variables = tiny_model_and_variables("hled")
  model = models.create_model(tiny_config("hled", lstm_dropout_rate=0.0))
  sharded = models.create_model(tiny_config("hled", lstm_dropout_rate=0.0), axis_name="data")
  mesh = Mesh(np.array(jax.devices()[:2]), ("data",))
  assert mesh.devices.size == 2, "conftest should simulate two CPU devices"

  @functools.partial(
      jax.shard_map, mesh=mesh, in_specs=(P(), P("data")), out_specs=(P("data"), P())
  )
  def sharded_apply(variables, images):
    logits, updates = sharded.apply(variables, images, train=True, mutable=["batch_stats"])
    return logits, updates["batch_stats"]

  @jit
  def both(variables, images):
    full_logits, full_updates = model.apply(variables, images, train=True, mutable=["batch_stats"])
    return sharded_apply(variables, images), (full_logits, full_updates["batch_stats"])

  (logits, batch_stats), (full_logits, full_batch_stats) = both(variables, random_images(8))
  leaves = jax.tree_util.tree_leaves(batch_stats)
  assert len(leaves) == len(jax.tree_util.tree_leaves(full_batch_stats)) > 10
  jax.tree_util.tree_map(
      functools.partial(np.testing.assert_allclose, rtol=1e-4, atol=1e-6),
      batch_stats,
      full_batch_stats,
  )
  np.testing.assert_allclose(logits, full_logits, rtol=1e-4, atol=1e-5)


def hled_bilinear_deconv_1d(x: np.ndarray, factor: int, axis: int) -> np.ndarray:
  """HLED's fixed upsampling along one axis, written out as a transposed convolution.

  FCN's `bilinear_upsample_weights` taps (size 2f - f%2) scattered with stride f, cropped as TF's
  `conv2d_transpose(..., padding='SAME')` crops: an independent statement of what it computes.
  """
  size = 2 * factor - factor % 2
  center = factor - 1 if size % 2 == 1 else factor - 0.5
  taps = 1 - np.abs(np.arange(size) - center) / factor
  crop = (size - factor) // 2
  x = np.moveaxis(x, axis, 0)
  out = np.zeros((x.shape[0] * factor, *x.shape[1:]))
  for k in range(x.shape[0]):
    for t in range(size):
      o = factor * k + t - crop
      if 0 <= o < out.shape[0]:
        out[o] += taps[t] * x[k]
  return np.moveaxis(out, 0, axis)


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_upsampling_equals_independent_references(factor):
  x = np.random.default_rng(9).normal(size=(2, 6, 7, 3)).astype(np.float32)
  shape = (2, 6 * factor, 7 * factor, 3)
  resized = layers.upsample(jnp.asarray(x), factor, "bilinear")
  np.testing.assert_allclose(resized, jax.image.resize(x, shape, "bilinear"), atol=1e-5)
  deconv = layers.upsample(jnp.asarray(x), factor, "bilinear_deconv")
  expected = hled_bilinear_deconv_1d(hled_bilinear_deconv_1d(x, factor, 1), factor, 2)
  np.testing.assert_allclose(deconv, expected, atol=1e-5)
  # The two differ only next to the border, where HLED's taps fall outside the image.
  inner = slice(factor, -factor)
  np.testing.assert_allclose(deconv[:, inner, inner], resized[:, inner, inner], atol=1e-5)
  assert np.abs(deconv[:, 0, 0] - resized[:, 0, 0]).max() > 0.05


@pytest.mark.parametrize(
    "kind,factor,kernel_size",
    [("bilinear", 4, 3), ("bilinear", 3, 2), ("bilinear_deconv", 2, 3), ("bilinear_deconv", 4, 1)],
)
def test_upsampled_conv_equals_a_conv_of_the_upsampled_maps(kind, factor, kernel_size):
  rng = np.random.default_rng(factor * 10 + kernel_size)
  x = jnp.asarray(rng.normal(size=(2, 5, 6, 4)), jnp.float32)
  kernel = jnp.asarray(rng.normal(size=(kernel_size, kernel_size, 4, 3)), jnp.float32)
  target = jnp.asarray(rng.normal(size=(2, 5 * factor, 6 * factor, 3)), jnp.float32)

  def direct(x, kernel):
    return nn.Conv(3, (kernel_size, kernel_size), use_bias=False).apply(
        {"params": {"kernel": kernel}}, layers.upsample(x, factor, kind)
    )

  def fast(x, kernel):
    return layers.upsampled_conv(x, kernel, factor, kind)

  @functools.partial(jax.jit, static_argnums=0)
  def outputs_and_gradients(conv, x, kernel):
    loss = lambda x, kernel: jnp.sum((conv(x, kernel) - target) ** 2)
    return conv(x, kernel), jax.grad(loss, argnums=(0, 1))(x, kernel)

  fast_outputs, fast_grads = outputs_and_gradients(fast, x, kernel)
  direct_outputs, direct_grads = outputs_and_gradients(direct, x, kernel)
  np.testing.assert_allclose(fast_outputs, direct_outputs, rtol=1e-5, atol=1e-5)
  for fast_grad, direct_grad in zip(fast_grads, direct_grads):
    np.testing.assert_allclose(fast_grad, direct_grad, rtol=1e-4, atol=1e-3)


def test_upsampled_conv_module_initialises_like_nn_conv():
  x = jnp.ones((1, 4, 4, 5))
  rng = jax.random.key(3)
  fast = layers.UpsampledConv(7, (3, 3), use_bias=False, factor=4).init(rng, x)
  direct = nn.Conv(7, (3, 3), use_bias=False).init(rng, x)
  np.testing.assert_array_equal(fast["params"]["kernel"], direct["params"]["kernel"])


@pytest.mark.parametrize("kernel_size", [(3, 3), (1, 1)])
@pytest.mark.parametrize("module", [layers.Conv, layers.UpsampledConv])  # the latter by factor 1
def test_conv_is_nn_conv_in_float32(kernel_size, module):
  """The same parameters from the same key, and the same outputs and gradients to the bit."""
  x = jax.random.normal(rng(1), (2, 9, 7, 5))
  ours, flax_conv = module(6, kernel_size), nn.Conv(6, kernel_size)
  variables = ours.init(rng(2), x)
  jax.tree_util.tree_map(np.testing.assert_array_equal, variables, flax_conv.init(rng(2), x))
  variables = jax.tree_util.tree_map(lambda v: v + 0.1, variables)  # a non-zero bias

  def loss_and_grads(module):
    loss = lambda v, x: jnp.sum(jnp.sin(module.apply(v, x)))
    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(variables, x)

  jax.tree_util.tree_map(
      np.testing.assert_array_equal, loss_and_grads(ours), loss_and_grads(flax_conv)
  )


def test_a_bfloat16_conv_sums_its_bias_gradient_in_float32():
  """262,144 pixels of gradient 1.0: the float32 sum is exact. (XLA sums nn.Conv's bfloat16 bias
  gradient in bfloat16, which stops growing long before; see `layers.Conv`.)"""
  x = jnp.zeros((4, 256, 256, 1), jnp.bfloat16)
  conv = layers.Conv(2, (3, 3), dtype=jnp.bfloat16)
  variables = conv.init(rng(0), x)
  outputs, pullback = jax.vjp(lambda v: conv.apply(v, x), variables)
  assert outputs.dtype == jnp.bfloat16
  (grads,) = pullback(jnp.ones_like(outputs))
  np.testing.assert_array_equal(grads["params"]["bias"], np.full(2, 4 * 256 * 256, np.float32))


def conv_of_upsampled_maps(next_fun, args, kwargs, context, replaced: list):
  """A Flax interceptor that runs every `UpsampledConv` the direct way: conv(upsample(x))."""
  module = context.module
  if not (isinstance(module, layers.UpsampledConv) and context.method_name == "__call__"):
    return next_fun(*args, **kwargs)
  replaced.append(module.path)
  upsampled = layers.upsample(args[0], module.factor, module.kind)
  kernel = module.variables["params"]["kernel"].astype(upsampled.dtype)
  return jax.lax.conv_general_dilated(
      upsampled, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
  )


def test_the_low_resolution_decoder_changes_no_output_or_gradient():
  """Logits (train and eval), BatchNorm updates and gradients of a whole model are those of the
  decoder that convolves the upsampled maps."""
  fast = train_and_eval_pass("paper")(0)
  replaced = []
  with nn.intercept_methods(functools.partial(conv_of_upsampled_maps, replaced=replaced)):
    direct = train_and_eval_pass.__wrapped__("paper")(0)  # traced afresh, inside the interceptor
  assert ("decoder", "Conv_0") in replaced
  for fast_leaf, direct_leaf in zip(jax.tree.leaves(fast), jax.tree.leaves(direct), strict=True):
    scale = float(np.abs(direct_leaf).max())
    np.testing.assert_allclose(fast_leaf, direct_leaf, rtol=1e-4, atol=1e-5 * max(scale, 1.0))


def test_config_errors_name_the_bad_value():
  with pytest.raises(ValueError, match="'unet'"):
    models.model_config("unet")
  with pytest.raises(ValueError, match="'float16'"):
    models.create_model(tiny_config("paper", dtype="float16"))
  images = jax.ShapeDtypeStruct((1, 256, 256, 3), jnp.uint8)
  for overrides, message in [
      ({"projection": "diagonal"}, "'diagonal'"),
      ({"decoder_upsampling_factors": (4, 2)}, "128x128 for 256x256"),
      ({"decoder_kind": "fcn"}, "use_lstm_branch=False"),
  ]:
    model = models.create_model(tiny_config("paper", **overrides))
    with pytest.raises(ValueError, match=message):
      jax.eval_shape(functools.partial(model.init, train=False), rng(0), images)


@pytest.mark.parametrize("shape", [(2, 16, 16, 3), (1, 9, 7, 2)])
def test_max_pool_2x2_matches_flax_max_pool_after_a_relu(shape):
  """Same values as `nn.max_pool` (VALID, stride 2) and, on ReLU outputs, the same input gradient
  (ties are zeros there, whose gradient the ReLU drops)."""
  x = jax.random.normal(jax.random.key(0), shape)
  flax_pool = lambda x: nn.max_pool(jax.nn.relu(x), (2, 2), strides=(2, 2))
  ours = lambda x: layers.max_pool_2x2(jax.nn.relu(x))
  np.testing.assert_array_equal(ours(x), flax_pool(x))
  cotangent = jax.random.normal(jax.random.key(1), flax_pool(x).shape)
  grad = lambda f: jax.vjp(f, x)[1](cotangent)[0]
  np.testing.assert_array_equal(grad(ours), grad(flax_pool))


def test_the_encoder_and_decoder_built_alone_are_the_model_s_own():
  """`encoder_of` / `decoder_of` (which benchmarks/train_step.py times alone) build the very
  submodules the model runs: given the model's variables and inputs, the same outputs."""
  model, variables = tiny_model_and_variables("paper")
  calls = {}

  def record(next_fun, args, kwargs, context):
    output = next_fun(*args, **kwargs)
    if context.method_name == "__call__" and context.module.name in ("encoder", "decoder"):
      calls[context.module.name] = (args, output)
    return output

  with nn.intercept_methods(record):
    model.apply(variables, random_images(), train=False)
  conv, norm = models.layer_constructors(model, train=False)
  for name, build in (("encoder", models.encoder_of), ("decoder", models.decoder_of)):
    args, expected = calls[name]
    own = {kind: tree[name] for kind, tree in variables.items()}
    got = build(model, conv, norm).apply(own, *args)
    for got_leaf, expected_leaf in zip(
        jax.tree.leaves(got), jax.tree.leaves(expected), strict=True
    ):
      np.testing.assert_array_equal(got_leaf, expected_leaf)
