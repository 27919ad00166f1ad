"""Pages of the clouds app: agents, the Register new platform wizard, Manage Clouds, download
links, and the download behind a link (the one URL here without the customer prefix)."""

from django.urls import path

from .views import agents, clouds, download, links, wizard

app_name = "clouds"

CUSTOMER = "c/<slug:customer_slug>/"

urlpatterns = [
    path(CUSTOMER + "agents/", agents.AgentListView.as_view(), name="agent_list"),
    path(CUSTOMER + "agents/<int:pk>/", agents.AgentDetailView.as_view(), name="agent_detail"),
    path(
        CUSTOMER + "agents/<int:pk>/revoke-credential/",
        agents.AgentCredentialRevokeView.as_view(),
        name="agent_credential_revoke",
    ),
    path(
        CUSTOMER + "agents/<int:pk>/debug-logging/",
        agents.AgentDebugLoggingView.as_view(),
        name="agent_debug_logging",
    ),
    path(
        CUSTOMER + "agents/<int:pk>/delete/", agents.AgentDeleteView.as_view(), name="agent_delete"
    ),
    # Register new platform (the four-step wizard)
    path(CUSTOMER + "register/", wizard.WizardStartView.as_view(), name="wizard_start"),
    path(
        CUSTOMER + "register/<int:pk>/step-<int:step>/",
        wizard.WizardStepView.as_view(),
        name="wizard_step",
    ),
    path(
        CUSTOMER + "register/<int:pk>/discard/",
        wizard.WizardDiscardView.as_view(),
        name="wizard_discard",
    ),
    # The package behind a download link: no login (curl fetches it), the link is the key.
    path("download/<str:text>/", download.DownloadView.as_view(), name="download"),
    # Manage Clouds
    path(CUSTOMER + "clouds/", clouds.CloudListView.as_view(), name="cloud_list"),
    path(CUSTOMER + "clouds/<int:pk>/edit/", clouds.CloudEditView.as_view(), name="cloud_edit"),
    path(
        CUSTOMER + "clouds/<int:pk>/delete/", clouds.CloudDeleteView.as_view(), name="cloud_delete"
    ),
    path(CUSTOMER + "clouds/<int:pk>/test/", clouds.CloudTestView.as_view(), name="cloud_test"),
    path(
        CUSTOMER + "clouds/<int:pk>/download/",
        clouds.CloudDownloadView.as_view(),
        name="cloud_download",
    ),
    # Download links
    path(CUSTOMER + "download-links/", links.LinkListView.as_view(), name="link_list"),
    path(CUSTOMER + "download-links/<int:pk>/", links.LinkDetailView.as_view(), name="link_detail"),
    path(
        CUSTOMER + "download-links/<int:pk>/revoke/",
        links.LinkRevokeView.as_view(),
        name="link_revoke",
    ),
]
