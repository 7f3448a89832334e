"""A test-only route that reads every tenant model WITHOUT filtering, inside a tenant request."""

from django.apps import apps
from django.http import HttpRequest, JsonResponse
from django.urls import include, path

from core.tenancy import TenantModel
from portal.urls import urlpatterns as portal_patterns


def tenant_models() -> list[type[TenantModel]]:
    return [m for m in apps.get_models() if issubclass(m, TenantModel)]


def unfiltered(request: HttpRequest, practice_slug: str) -> JsonResponse:
    seen = {
        m._meta.label: sorted(set(m.objects.all().values_list("practice_id", flat=True)))
        for m in tenant_models()
    }
    return JsonResponse(seen)


urlpatterns = [
    path("p/<slug:practice_slug>/_probe/", unfiltered),
    path("", include(portal_patterns)),
]
