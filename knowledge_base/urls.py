"""HTTP routes of knowledge_base (included from hub/urls.py)."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
