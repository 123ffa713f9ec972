"""Perps ops control tower: shared settings, database plumbing and the `tower` command."""
