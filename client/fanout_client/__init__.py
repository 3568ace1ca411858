"""Fanout's notebook client: GridSearchCV and RandomizedSearchCV look-alikes whose fits run on a Fanout server.

>>> from fanout_client import FanoutSearchCV
>>> search = FanoutSearchCV(SVC(), {"C": [0.1, 1, 10]}, url="http://127.0.0.1:8000", token="...")
>>> search.fit(X, y)  # uploads X and y, runs the search on the cluster, shows a progress bar
>>> search.best_params_, search.cv_results_, search.predict(X_new)
"""

from __future__ import annotations

__version__ = "0.1.0"

from ._errors import FanoutError, FanoutSpecError, NotSendableError
from .search import FanoutRandomizedSearchCV, FanoutSearchCV

__all__ = [
    "FanoutError",
    "FanoutRandomizedSearchCV",
    "FanoutSearchCV",
    "FanoutSpecError",
    "NotSendableError",
    "__version__",
]
