from django.contrib import admin
from django.urls import include, path

from search.views import accounts

urlpatterns = [
    # Both login pages throttle failed attempts (search/views/accounts.py); they come before the routes
    # they override, and the names (`login`, `admin:login`) still reverse to these same URLs.
    path("admin/login/", accounts.admin_login),
    path("admin/", admin.site.urls),
    path("accounts/login/", accounts.login, name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("search.urls")),
]
