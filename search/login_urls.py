"""The two login pages, throttled (search/views/accounts.py). The project's URLconf includes these before the
admin's and django.contrib.auth's own, which they override; `login` and `admin:login` still reverse to them."""

from django.urls import path

from search.views import accounts

urlpatterns = [
    path("admin/login/", accounts.admin_login),
    path("accounts/login/", accounts.login, name="login"),
]
