from django.contrib import admin
from django.urls import include, path

from search.api import api

urlpatterns = [
    # The throttled login pages first: they override the admin's and django.contrib.auth's.
    path("", include("search.login_urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("search.urls")),
]
