"""Root URLs."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from chat import views as chat_views
from hub import advisor_views, dashboard_views, staff_views, views
from routing import config_views as routing_config_views
from routing import pages as routing_pages
from routing import views as routing_views

urlpatterns = [
    path("", views.index),
    path("healthz", views.healthz),
    path("api/auth/token/", views.token_create),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("console/", chat_views.console_page, name="console"),
    path("webchat/", chat_views.webchat_demo_page, name="webchat-demo"),
    path("api/conversations/", chat_views.api_conversations),
    path("api/conversations/<str:conversation_id>/messages/", chat_views.api_messages),
    path("api/conversations/<str:conversation_id>/notes/", chat_views.api_notes),
    path("api/conversations/<str:conversation_id>/close/", chat_views.api_close),
    path("api/conversations/<str:conversation_id>/transfer/", routing_views.api_transfer),
    path("api/conversations/<str:conversation_id>/type/", routing_views.api_conversation_type),
    path("api/presence/", chat_views.api_presence),
    path("dashboard/", dashboard_views.dashboard_page, name="dashboard"),
    path("api/dashboard/live/", dashboard_views.api_dashboard_live),
    path("api/dashboard/period/", dashboard_views.api_dashboard_period),
    path("api/dashboard/period.csv", dashboard_views.api_dashboard_period_csv),
    path("channels/<slug:channel>/webhook", chat_views.channel_webhook),
    path("api/routing/options/", routing_views.api_routing_options),
    path("api/routing/queue/", routing_views.api_routing_queue),
    path("api/derivations/preview/", routing_views.api_derivation_preview),
    path("api/derivations/", routing_views.api_derivations),
    # The coordinators' routing page and its configuration endpoints (routing/config_views.py).
    path("coordinator/routing/", routing_pages.routing_page, name="routing-page"),
    path("api/routing/config/", routing_config_views.api_routing_config),
    path("api/routing/query-types/", routing_config_views.api_query_types),
    path("api/routing/query-types/<int:query_type_id>/", routing_config_views.api_query_type),
    path("api/routing/resolutions/", routing_config_views.api_resolutions),
    path("api/routing/resolutions/<int:resolution_id>/", routing_config_views.api_resolution),
    path("api/routing/operators/<int:user_id>/", routing_config_views.api_operator_profile),
    path("api/routing/settings/", routing_config_views.api_routing_menu),
    # Staff pages for admins (hub/staff_views.py): users and roles, derivations, audit.
    path("staff/users/", staff_views.users_page, name="staff-users"),
    path("staff/derivations/", staff_views.derivations_page, name="staff-derivations"),
    path("staff/audit/", staff_views.audit_page, name="staff-audit"),
    path("api/staff/users/", staff_views.api_users),
    path("api/staff/users/<int:user_id>/", staff_views.api_user),
    path("api/staff/users/<int:user_id>/password/", staff_views.api_user_password),
    path("api/staff/operators/", staff_views.api_derivation_operators),
    path(
        "api/staff/operators/<int:operator_id>/conversations/",
        staff_views.api_operator_conversations,
    ),
    path("api/staff/absences/", staff_views.api_absences),
    path("api/staff/absences/<int:absence_id>/", staff_views.api_absence),
    path("api/staff/audit/choices/", staff_views.api_audit_choices),
    path("api/audit/verify/", staff_views.api_audit_verify),
    # External advisors (seed 003, hub/advisor_views.py).
    path("staff/advisors/", advisor_views.advisors_admin_page, name="staff-advisors"),
    path("advisor/", advisor_views.advisor_portal_page, name="advisor"),
    path("api/advisors/", advisor_views.api_advisors),
    path("api/advisors/code/rotate/", advisor_views.api_code_rotate),
    path("api/advisors/accounts/", advisor_views.api_accounts),
    path("api/advisors/<int:advisor_id>/permanent/", advisor_views.api_permanent),
    path("api/advisors/<int:advisor_id>/remove/", advisor_views.api_remove),
    path("api/advisors/me/", advisor_views.api_me),
    path("api/advisors/join/", advisor_views.api_join),
    path("api/advisors/leave/", advisor_views.api_leave),
    path("api/advisors/conversations/", advisor_views.api_conversations),
    path(
        "api/advisors/conversations/<str:conversation_id>/messages/",
        advisor_views.api_conversation_messages,
    ),
    path("", include("knowledge_base.urls")),
    path("", include("scheduling.urls")),
    path("", include("hsm.urls")),
    path("", include("backoffice_bridge.urls")),
    path("admin/", admin.site.urls),
]
