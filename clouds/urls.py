from django.urls import path

from . import views, views_download, views_wizard
from .urls_manage import urlpatterns as manage_patterns

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
    # Register new platform (the four-step wizard)
    path(CUSTOMER + "register/", views_wizard.WizardStartView.as_view(), name="wizard_start"),
    path(
        CUSTOMER + "register/<int:pk>/step-<int:step>/",
        views_wizard.WizardStepView.as_view(),
        name="wizard_step",
    ),
    path(
        CUSTOMER + "register/<int:pk>/discard/",
        views_wizard.WizardDiscardView.as_view(),
        name="wizard_discard",
    ),
    # The package behind a download link: no login (curl fetches it), the link is the key.
    path("download/<str:text>/", views_download.DownloadView.as_view(), name="download"),
    *manage_patterns,
]
