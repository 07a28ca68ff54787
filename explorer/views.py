"""The explorer's views: parse input, call one domain function, render."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from continust.models import Project


@require_GET
@login_required
def home(request: HttpRequest) -> HttpResponse:
    projects = Project.objects.filter(memberships__user=request.user).order_by("slug")
    return render(request, "home.html", {"projects": projects})
