"""Noise schedules and samplers: they take the network as a callable argument and know no data."""
