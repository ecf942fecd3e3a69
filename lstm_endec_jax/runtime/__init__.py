"""What every command shares: its start (`cli.run`: XLA flags, huge pages, the one map from errors to exit codes), the errors, the device mesh."""
