"""Loaded first by pytest (`-p tests.env`): environment defaults for the test settings.

Each pytest session gets its own var directory (SQLite test database, cache, data set copies), so two
sessions on one machine never share a database file; child processes (qcluster, runners) inherit it.
"""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-secret-key-not-used-anywhere-else-0123456789")
os.environ.setdefault("FANOUT_CLUSTER_NAME", f"fanout-tests-{os.getpid()}")
os.environ.setdefault(
    "FANOUT_PILOT_SECONDS", "0"
)  # no estimate pilots unless a test asks (tests/services/test_estimates.py)
if "FANOUT_VAR_DIR" not in os.environ:
    var_dir = tempfile.mkdtemp(prefix="fanout-tests-")
    os.environ["FANOUT_VAR_DIR"] = var_dir
    atexit.register(shutil.rmtree, var_dir, ignore_errors=True)
