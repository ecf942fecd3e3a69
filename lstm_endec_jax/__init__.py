"""LSTM-EnDec: hybrid LSTM and encoder-decoder forgery localization in JAX/Flax."""

__version__ = "0.1.0"
