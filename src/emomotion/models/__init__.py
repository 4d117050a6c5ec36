"""Networks only: configs, presets and modules (no data, no files, no training)."""
