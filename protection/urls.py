from django.urls import path

from .views import groups, jobs, machines, settings

app_name = "protection"

CUSTOMER = "c/<slug:customer_slug>/"

urlpatterns = [
    path(CUSTOMER + "machines/", machines.MachineListView.as_view(), name="machine_list"),
    path(
        CUSTOMER + "machines/bulk/", machines.MachineBulkActionView.as_view(), name="machine_bulk"
    ),
    path(
        CUSTOMER + "machines/<int:pk>/",
        machines.MachineDetailView.as_view(),
        name="machine_detail",
    ),
    path(
        CUSTOMER + "machines/<int:pk>/replicate/",
        jobs.MachineReplicateView.as_view(),
        name="machine_replicate",
    ),
    path(
        CUSTOMER + "machines/<int:pk>/jobs/status.json",
        jobs.MachineJobStatusView.as_view(),
        name="machine_job_status",
    ),
    path(CUSTOMER + "jobs/", jobs.JobListView.as_view(), name="job_list"),
    path(CUSTOMER + "jobs/<int:pk>/cancel/", jobs.JobCancelView.as_view(), name="job_cancel"),
    path(
        CUSTOMER + "machines/<int:pk>/settings/",
        settings.MachineSettingsView.as_view(),
        name="machine_settings",
    ),
    path(CUSTOMER + "groups/", groups.GroupListView.as_view(), name="group_list"),
    path(CUSTOMER + "groups/new/", groups.GroupCreateView.as_view(), name="group_create"),
    path(CUSTOMER + "groups/<int:pk>/", groups.GroupDetailView.as_view(), name="group_detail"),
    path(CUSTOMER + "groups/<int:pk>/edit/", groups.GroupUpdateView.as_view(), name="group_update"),
    path(
        CUSTOMER + "groups/<int:pk>/replicate/",
        groups.GroupReplicateView.as_view(),
        name="group_replicate",
    ),
    path(
        CUSTOMER + "groups/<int:pk>/delete/",
        groups.GroupDeleteView.as_view(),
        name="group_delete",
    ),
    path(
        CUSTOMER + "groups/<int:pk>/settings/",
        settings.GroupSettingsView.as_view(),
        name="group_settings",
    ),
    path(CUSTOMER + "settings/", settings.CustomerSettingsView.as_view(), name="customer_settings"),
]
