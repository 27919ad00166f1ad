"""Pages of the project package itself: the customer dashboard that summarizes every app."""

from django.urls import path

from .views import DashboardView

app_name = "acura_portal"

urlpatterns = [
    path("c/<slug:customer_slug>/", DashboardView.as_view(), name="dashboard"),
]
