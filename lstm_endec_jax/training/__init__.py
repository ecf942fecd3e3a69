"""The training loop and what only it needs: losses, optimizers, interrupts and the config checks run before it starts."""
