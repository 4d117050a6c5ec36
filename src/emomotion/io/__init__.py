"""File formats: BVH, atomic writes."""
