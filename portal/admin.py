"""The Django admin is for Hello's own staff (vendor roles), behind the second factor."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.http import HttpRequest, HttpResponse
from django_otp.admin import OTPAdminSite

from accounts.models import Location, Membership, Practice, User
from compliance import support_policy
from core.tenancy import cross_tenant


class VendorAdminSite(OTPAdminSite):
    site_header = "Hello Practice Portal — vendor administration"

    def has_permission(self, request: HttpRequest) -> bool:
        user = request.user
        return super().has_permission(request) and (
            user.is_vendor_staff or user.is_superuser  # type: ignore[union-attr]
        )

    def admin_view(self, view: Callable[..., HttpResponse], cacheable: bool = False) -> Any:
        inner = super().admin_view(view, cacheable)

        @wraps(inner)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            # Users and memberships are changed here; never from inside a support session.
            support_policy.refuse(support_policy.SupportForbidden.MEMBERSHIP, request)
            if not self.has_permission(request):
                return inner(request, *args, **kwargs)  # the login/refusal path
            with cross_tenant(f"vendor admin by user {request.user.pk}"):
                return inner(request, *args, **kwargs)

        return wrapped


site = VendorAdminSite(name="admin")


@admin.register(User, site=site)
class PortalUserAdmin(UserAdmin):
    list_display = ("username", "email", "vendor_role", "is_active")
    fieldsets = (*UserAdmin.fieldsets, ("Portal", {"fields": ("vendor_role",)}))


@admin.register(Practice, site=site)
class PracticeAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "timezone", "created_at")
    search_fields = ("name", "slug")


@admin.register(Location, site=site)
class LocationAdmin(admin.ModelAdmin):
    list_display = ("name", "practice", "key", "timezone")
    list_select_related = ("practice",)


@admin.register(Membership, site=site)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "practice", "role")
    list_filter = ("role",)
    list_select_related = ("user", "practice")
