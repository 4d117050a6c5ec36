"""Exporters of SMPL-22 motion to files other tools read (BVH)."""
