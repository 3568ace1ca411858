"""The engine is plain Python: importing all of it must not import Django."""

import subprocess
import sys

from project.cluster import ROOT


def test_engine_imports_without_django() -> None:
    code = (
        "import sys\n"
        "import search.engine.aggregate, search.engine.datasets, search.engine.registry\n"
        "import search.engine.run, search.engine.runner, search.engine.spec, search.engine.holdout\n"
        "import search.engine.refit, search.engine.errors, search.engine.artifacts, search.engine.predict\n"
        "assert not [m for m in sys.modules if m == 'django' or m.startswith('django.')], 'django imported'\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr


def test_a_runner_of_fits_does_not_import_skops() -> None:
    """skops imports every scikit-learn estimator (about 1 s): only a refit or a model load pays for it."""
    code = (
        "import sys\n"
        "import search.engine.runner, search.engine.artifacts, search.engine.predict\n"
        "assert 'skops' not in sys.modules, 'skops imported'\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
