"""LSTM-EnDec: hybrid LSTM and encoder-decoder forgery localization in JAX/Flax."""

from lstm_endec_jax import xla_flags as _xla_flags

_xla_flags.apply_defaults()

__version__ = "0.1.0"
