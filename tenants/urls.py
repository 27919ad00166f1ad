from django.urls import path

from .views import login, users

app_name = "tenants"

CUSTOMER = "c/<slug:customer_slug>/"

urlpatterns = [
    path("", login.HomeView.as_view(), name="home"),
    path("accounts/login/", login.PortalLoginView.as_view(), name="login"),
    path("accounts/logout/", login.PortalLogoutView.as_view(), name="logout"),
    path(CUSTOMER + "users/", users.MembershipListView.as_view(), name="membership_list"),
    path(CUSTOMER + "users/add/", users.MembershipCreateView.as_view(), name="membership_create"),
    path(
        CUSTOMER + "users/<int:pk>/edit/",
        users.MembershipUpdateView.as_view(),
        name="membership_update",
    ),
    path(
        CUSTOMER + "users/<int:pk>/remove/",
        users.MembershipDeleteView.as_view(),
        name="membership_delete",
    ),
]
