"""HTTP routes of backoffice_bridge (included from hub/urls.py)."""

from django.urls import URLPattern, path

from backoffice_bridge import case_views, views

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
    path(f"{_R}/cancel/", views.api_request_cancel),
    # The audit log is the bank's, not only the bridge's: /api/audit/.
    path("api/audit/", views.api_audit),
    path("api/audit/export.csv", views.api_audit_csv),
    # Payment cases (seed 002); opening one is an action type (the requests endpoint).
    path("api/cases/", case_views.api_cases),
    path("api/cases/tasks/", case_views.api_tasks),
    path("api/cases/tasks/<int:task_id>/claim/", case_views.api_task_claim),
    path("api/cases/tasks/<int:task_id>/complete/", case_views.api_task_complete),
    path("api/cases/tasks/<int:task_id>/debit/approve/", case_views.api_debit_approve),
    path("api/cases/tasks/<int:task_id>/debit/reject/", case_views.api_debit_reject),
    path("api/cases/rules/", case_views.api_rules),
    path("api/cases/rules/<int:rule_id>/", case_views.api_rule),
    path("api/cases/agents/<int:agent_id>/accounts/", case_views.api_agent_accounts),
    path(
        "api/cases/agents/<int:agent_id>/accounts/<str:bank_user_id>/",
        case_views.api_agent_account,
    ),
    path("api/cases/<int:case_id>/", case_views.api_case),
]
