"""HTTP routes of backoffice_bridge (included from hub/urls.py)."""

from django.urls import URLPattern, path

from backoffice_bridge import views

_C = "api/backoffice/conversations/<str:conversation_id>"
_R = "api/backoffice/requests/<int:request_id>"

urlpatterns: list[URLPattern] = [
    path("api/backoffice/action-types/", views.api_action_types),
    path(f"{_C}/bank-users/", views.api_bank_users),
    path(f"{_C}/link/", views.api_link),
    path(f"{_C}/link/refresh/", views.api_link_refresh),
    path(f"{_C}/consents/", views.api_consents),
    path(f"{_C}/consents/<int:consent_id>/revoke/", views.api_consent_revoke),
    path(f"{_C}/requests/", views.api_conversation_requests),
    path("api/backoffice/requests/", views.api_requests),
    path(f"{_R}/", views.api_request),
    path(f"{_R}/pick/", views.api_request_pick),
    path(f"{_R}/release/", views.api_request_release),
    path(f"{_R}/approve/", views.api_request_approve),
    path(f"{_R}/reject/", views.api_request_reject),
    # The audit log is the bank's, not only the bridge's: /api/audit/.
    path("api/audit/", views.api_audit),
    path("api/audit/export.csv", views.api_audit_csv),
]
