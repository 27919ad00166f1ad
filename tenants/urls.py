from django.urls import path

from . import views

app_name = "tenants"

CUSTOMER = "c/<slug:customer_slug>/"

urlpatterns = [
    path("", views.HomeView.as_view(), name="home"),
    path("accounts/login/", views.PortalLoginView.as_view(), name="login"),
    path("accounts/logout/", views.PortalLogoutView.as_view(), name="logout"),
    path(CUSTOMER + "users/", views.MembershipListView.as_view(), name="membership_list"),
    path(CUSTOMER + "users/add/", views.MembershipCreateView.as_view(), name="membership_create"),
    path(
        CUSTOMER + "users/<int:pk>/edit/",
        views.MembershipUpdateView.as_view(),
        name="membership_update",
    ),
    path(
        CUSTOMER + "users/<int:pk>/remove/",
        views.MembershipDeleteView.as_view(),
        name="membership_delete",
    ),
]
