"""Root URLs."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from chat import views as chat_views
from hub import views
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
    path("api/conversations/<str:conversation_id>/close/", chat_views.api_close),
    path("api/conversations/<str:conversation_id>/transfer/", routing_views.api_transfer),
    path("api/conversations/<str:conversation_id>/type/", routing_views.api_conversation_type),
    path("api/presence/", chat_views.api_presence),
    path("channels/<slug:channel>/webhook", chat_views.channel_webhook),
    path("api/routing/options/", routing_views.api_routing_options),
    path("api/derivations/preview/", routing_views.api_derivation_preview),
    path("api/derivations/", routing_views.api_derivations),
    path("", include("knowledge_base.urls")),
    path("", include("scheduling.urls")),
    path("", include("hsm.urls")),
    path("", include("backoffice_bridge.urls")),
    path("admin/", admin.site.urls),
]
