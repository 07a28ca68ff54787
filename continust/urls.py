"""URL configuration: the admin, the login pages, the API, metrics and the explorer."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/", include("api.routes")),
    path("tokens/", include("api.urls")),
    path("", include("api.metrics")),
    path("", include("explorer.urls")),
]

# Errors render inside the explorer's layout, with a way back.
handler400 = "explorer.errors.bad_request"
handler403 = "explorer.errors.permission_denied"
handler404 = "explorer.errors.page_not_found"
