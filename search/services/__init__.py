"""Services: every write and every multi-step action, `<entity>_<action>(*, kw-only args)`.

Adapters (views, admin, management commands, tasks) call these; services call selectors, models and the
engine, never an adapter. See docs/architecture.md.
"""
