"""Weights: weights.toml (the one list), safetensors files checked by sha256, never unpickled."""
