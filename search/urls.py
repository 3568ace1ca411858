"""Fanout's pages. Every view needs a logged-in user and answers 404 for another user's rows."""

from django.urls import path

from search.views import api, charts, datasets, models, predictions, searches, tokens

urlpatterns = [
    path("", searches.search_list, name="search-list"),
    path("searches/new/", searches.search_new, name="search-new"),
    path("searches/estimate/", searches.search_estimate, name="search-estimate"),
    path("searches/<int:pk>/", searches.search_detail, name="search-detail"),
    path("searches/<int:pk>/progress.json", searches.search_progress, name="search-progress"),
    path("searches/<int:pk>/leaderboard/", searches.search_leaderboard, name="search-leaderboard"),
    path("searches/<int:pk>/charts/<slug:kind>.json", charts.search_chart, name="search-chart"),
    path("searches/<int:pk>/export.<str:fmt>", searches.search_export, name="search-export"),
    path("searches/<int:pk>/cancel/", searches.search_cancel, name="search-cancel"),
    path("searches/<int:pk>/rerun/", searches.search_rerun, name="search-rerun"),
    path("searches/<int:pk>/study/", searches.search_study, name="search-study"),
    path("searches/<int:pk>/model/", models.search_model, name="search-model"),
    path("searches/<int:pk>/model.<str:fmt>", models.search_model_download, name="search-model-download"),
    path("searches/<int:pk>/predict/", predictions.search_predict, name="search-predict"),
    path(
        "searches/<int:pk>/predictions/<int:prediction_id>.csv",
        predictions.search_prediction_download,
        name="search-prediction-download",
    ),
    path("datasets/", datasets.dataset_list, name="dataset-list"),
    path("datasets/upload/", datasets.dataset_upload, name="dataset-upload"),
    path("datasets/<int:pk>/", datasets.dataset_detail, name="dataset-detail"),
    path("datasets/<int:pk>/delete/", datasets.dataset_delete, name="dataset-delete"),
    path("accounts/tokens/", tokens.token_list, name="token-list"),
    path("accounts/tokens/<int:pk>/revoke/", tokens.token_revoke, name="token-revoke"),
    path("api/estimators/<str:name>.json", api.estimator_params, name="api-estimator"),
    path("api/generators/<str:name>.json", api.generator_options, name="api-generator"),
]
