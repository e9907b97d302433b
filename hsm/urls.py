"""HTTP routes of hsm (included from hub/urls.py)."""

from django.urls import URLPattern, path

from hsm import pages, views

urlpatterns: list[URLPattern] = [
    path("api/hsm/templates/", views.api_templates),
    path("api/hsm/templates/preview/", pages.api_template_preview),
    path("api/hsm/templates/<int:template_id>/history/", pages.api_template_history),
    path("api/hsm/templates/<int:template_id>/", views.api_template),
    path("api/hsm/templates/<int:template_id>/status/", views.api_template_status),
    path("api/hsm/templates/<int:template_id>/render/", views.api_template_render),
    path("api/conversations/<str:conversation_id>/templates/", views.api_conversation_templates),
    path("api/outreach/", views.api_outreach),
    path("api/outreach/customers/", views.api_outreach_customers),
    path("coordinator/templates/", pages.templates_page, name="hsm-templates-page"),
]
