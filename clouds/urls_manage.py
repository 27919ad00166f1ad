"""URLs of the Manage Clouds and Download links pages (included by ``clouds.urls``)."""

from django.urls import path

from . import views_clouds, views_links

CUSTOMER = "c/<slug:customer_slug>/"

urlpatterns = [
    path(CUSTOMER + "clouds/", views_clouds.CloudListView.as_view(), name="cloud_list"),
    path(
        CUSTOMER + "clouds/<int:pk>/edit/",
        views_clouds.CloudEditView.as_view(),
        name="cloud_edit",
    ),
    path(
        CUSTOMER + "clouds/<int:pk>/delete/",
        views_clouds.CloudDeleteView.as_view(),
        name="cloud_delete",
    ),
    path(
        CUSTOMER + "clouds/<int:pk>/test/",
        views_clouds.CloudTestView.as_view(),
        name="cloud_test",
    ),
    path(
        CUSTOMER + "clouds/<int:pk>/download/",
        views_clouds.CloudDownloadView.as_view(),
        name="cloud_download",
    ),
    path(CUSTOMER + "download-links/", views_links.LinkListView.as_view(), name="link_list"),
    path(
        CUSTOMER + "download-links/<int:pk>/",
        views_links.LinkDetailView.as_view(),
        name="link_detail",
    ),
    path(
        CUSTOMER + "download-links/<int:pk>/revoke/",
        views_links.LinkRevokeView.as_view(),
        name="link_revoke",
    ),
]
