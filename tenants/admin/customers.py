"""Provider admin for customers and memberships (and memberships on the user page)."""

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import Count

from ..models import Customer, Membership
from ..services import customer_set_active

User = get_user_model()


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]
    readonly_fields = ["created_at"]
    fields = ["user", "role", "created_at"]


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "time_zone", "is_active", "member_count", "created_at"]
    list_filter = ["is_active", "time_zone"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["created_at"]
    ordering = ["name"]
    inlines = [MembershipInline]
    actions = ["activate", "deactivate"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_member_count=Count("memberships"))

    @admin.display(description="Members", ordering="_member_count")
    def member_count(self, obj):
        return obj._member_count

    def get_readonly_fields(self, request, obj=None):
        # The slug is in every dashboard URL and in agents' configuration: fixed once set.
        readonly = list(super().get_readonly_fields(request, obj))
        return [*readonly, "slug"] if obj is not None else readonly

    def get_prepopulated_fields(self, request, obj=None):
        return {} if obj is not None else super().get_prepopulated_fields(request, obj)

    @admin.action(description="Activate selected customers")
    def activate(self, request, queryset):
        changed = customer_set_active(queryset, active=True)
        self.message_user(request, f"{changed} customer(s) activated.", messages.SUCCESS)

    @admin.action(description="Deactivate selected customers (their users cannot log in)")
    def deactivate(self, request, queryset):
        changed = customer_set_active(queryset, active=False)
        self.message_user(request, f"{changed} customer(s) deactivated.", messages.SUCCESS)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "user_email", "customer", "role", "last_login", "created_at"]
    list_filter = ["role", "customer"]
    search_fields = ["user__username", "user__email", "customer__name", "customer__slug"]
    list_select_related = ["user", "customer"]
    autocomplete_fields = ["user", "customer"]
    readonly_fields = ["created_at"]

    @admin.display(description="Email", ordering="user__email")
    def user_email(self, obj):
        return obj.user.email

    @admin.display(description="Last login", ordering="user__last_login")
    def last_login(self, obj):
        return obj.user.last_login


class UserMembershipInline(MembershipInline):
    autocomplete_fields = ["customer"]
    fields = ["customer", "role", "created_at"]


class PortalUserAdmin(UserAdmin):
    """Django's user admin, plus the customers each user belongs to."""

    inlines = [*UserAdmin.inlines, UserMembershipInline]
    list_display = [*UserAdmin.list_display, "customers", "last_login"]
    list_filter = [*UserAdmin.list_filter, "memberships__customer", "memberships__role"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("memberships__customer")

    @admin.display(description="Customers")
    def customers(self, obj):
        return ", ".join(m.customer.slug for m in obj.memberships.all()) or "—"


if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, PortalUserAdmin)
