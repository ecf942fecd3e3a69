"""TFDS dataset builders; importing this package registers every builder with TFDS."""
