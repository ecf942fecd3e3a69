"""Columbia uncompressed image splicing builder."""
