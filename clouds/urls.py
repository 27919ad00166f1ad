from django.urls import path

from . import views

app_name = "clouds"

CUSTOMER = "c/<slug:customer_slug>/"

urlpatterns = [
    path(CUSTOMER + "agents/", views.AgentListView.as_view(), name="agent_list"),
    path(CUSTOMER + "agents/<int:pk>/", views.AgentDetailView.as_view(), name="agent_detail"),
    path(
        CUSTOMER + "agents/<int:pk>/revoke-credential/",
        views.AgentCredentialRevokeView.as_view(),
        name="agent_credential_revoke",
    ),
    path(
        CUSTOMER + "agents/<int:pk>/debug-logging/",
        views.AgentDebugLoggingView.as_view(),
        name="agent_debug_logging",
    ),
    path(
        CUSTOMER + "agents/<int:pk>/delete/", views.AgentDeleteView.as_view(), name="agent_delete"
    ),
]
