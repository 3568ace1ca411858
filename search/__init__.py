"""Fanout's search app. The package root imports no Django so `search.engine` stays pure."""
