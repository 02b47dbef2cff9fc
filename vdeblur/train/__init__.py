"""Training: data sampling, losses, the loop with checkpoints, and export to weights.toml."""
