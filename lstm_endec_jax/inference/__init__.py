"""Predicting on your own images (`Localizer`), whole or in tiles; imports neither TFDS nor grain."""
