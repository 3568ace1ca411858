"""The REST API at /api/v1/ (docs/api.md): django-ninja, a bearer token per user, every error as JSON.

An adapter like the views: each endpoint parses its request, calls a selector or a service, and answers; a
token sees exactly what its user sees on the pages (the same selectors, given the token's user)."""

from __future__ import annotations

from ninja import NinjaAPI

from search.api import datasets, errors, estimators, models, searches
from search.api.auth import BearerToken

api = NinjaAPI(
    title="Fanout API",
    version="1",
    description="Parallel hyperparameter search with scikit-learn: data sets, searches, their cv_results, the "
    "tuned model and predictions. Authenticate with `Authorization: Bearer <token>`.",
    auth=BearerToken(),
    urls_namespace="api-v1",
    openapi_url="/openapi.json",
    docs_url="/docs",
)
errors.install(api)
api.add_router("", estimators.router)
api.add_router("", datasets.router)
api.add_router("", searches.router)
api.add_router("", models.router)
