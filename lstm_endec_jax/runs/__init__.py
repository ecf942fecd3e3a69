"""A run's workdir: its layout, Orbax checkpoints, the metric writer, and loading a run's or the shipped weights."""
