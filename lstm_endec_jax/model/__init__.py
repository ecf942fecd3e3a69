"""The network: its layers, the resampling features, the patch order, the variants, and the one forward pass to probabilities."""
