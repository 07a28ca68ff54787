"""URL configuration: the admin, the login pages and the explorer."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/", include("api.routes")),
    path("tokens/", include("api.urls")),
    path("", include("explorer.urls")),
]
