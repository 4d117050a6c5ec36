"""Importers of official checkpoints (read with torch.load(weights_only=True), keys mapped, saved as ours)."""
