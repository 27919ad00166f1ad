from django.urls import path

from .views import prune, snapshots

app_name = "storage"

CUSTOMER = "c/<slug:customer_slug>/"

urlpatterns = [
    path(CUSTOMER + "storage/", snapshots.StorageUsageView.as_view(), name="usage"),
    path(
        CUSTOMER + "machines/<int:pk>/snapshots/",
        snapshots.MachineSnapshotListView.as_view(),
        name="machine_snapshots",
    ),
    path(
        CUSTOMER + "machines/<int:pk>/prune-preview/",
        prune.PrunePreviewView.as_view(),
        name="machine_prune_preview",
    ),
    path(
        CUSTOMER + "snapshots/<uuid:pk>/image/",
        snapshots.SnapshotImageDownloadView.as_view(),
        name="snapshot_image",
    ),
    path(
        CUSTOMER + "snapshots/<uuid:pk>/protect/",
        snapshots.SnapshotProtectView.as_view(),
        name="snapshot_protect",
    ),
]
