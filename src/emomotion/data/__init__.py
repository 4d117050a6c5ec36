"""Datasets: sources (Emilya, Bandai, BVH folders, HumanML3D, synthetic), build, merge, loading."""
