"""HTTP routes of scheduling (included from hub/urls.py)."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
