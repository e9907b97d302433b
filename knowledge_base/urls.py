"""HTTP routes of knowledge_base (included from hub/urls.py)."""

from django.urls import URLPattern, path

from knowledge_base import pages, views

urlpatterns: list[URLPattern] = [
    path("api/kb/replies/", views.api_replies),
    path("api/kb/replies/reorder/", views.api_replies_reorder),
    path("api/kb/replies/preview/", pages.api_reply_preview),
    path("api/kb/replies/<int:reply_id>/", views.api_reply),
    path("api/kb/replies/<int:reply_id>/render/", views.api_reply_render),
    path("coordinator/replies/", pages.replies_page, name="kb-replies-page"),
]
