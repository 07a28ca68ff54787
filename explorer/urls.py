"""The explorer's URLs."""

from __future__ import annotations

from django.urls import path

from explorer import views

urlpatterns = [
    path("", views.home, name="home"),
]
