"""Loaded first by pytest (`-p tests.env`): environment defaults for the test settings."""

import os
from pathlib import Path

os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-secret-key-not-used-anywhere-else-0123456789")
os.environ.setdefault("FANOUT_VAR_DIR", str(Path(__file__).resolve().parent.parent / "var" / "tests"))
os.environ.setdefault("FANOUT_CLUSTER_NAME", "fanout-tests")
