"""Selectors: reads for pages, exports and services. Nothing here writes to the database.

Selectors call models, the engine and charts' row types, never a service. See docs/architecture.md.
"""
