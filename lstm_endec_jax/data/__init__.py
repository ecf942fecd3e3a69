"""Images in: the decoder every reader shares, the TFDS/grain input pipeline, and the distortions of the robustness sweep."""
