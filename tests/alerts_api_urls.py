"""The project's URLs plus the alerts API where the lead will mount it (tests only)."""

from django.urls import include, path

from vipanel.urls import urlpatterns as project

urlpatterns = [path("api/v1/alerts/", include("alerts.api_urls")), *project]
