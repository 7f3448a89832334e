from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from accounts import views as account_views
from portal import views
from portal.admin import site as admin_site
from receptionist_api.voice.mcp_server import mcp_endpoint

tenant_patterns = [
    path("", views.dashboard, name="dashboard"),
    path("locations/", views.location_list, name="location_list"),
    path("locations/<int:pk>/", views.location_detail, name="location_detail"),
    path("team/", views.team, name="team"),
    path("compliance/", include("compliance.urls")),
    path("ehr/", include("ehr.portal_urls")),
    path("calls/", include("calls.urls")),
    path("", include("calls.escalation.urls")),
    path("", include("portal.setup.urls")),
    path("scheduling/", include("scheduling.web.urls")),
    path("bookings/", include("booking.frontdesk.urls")),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    # Browsers ask for /favicon.ico whatever the page links: send them to the icon.
    path(
        "favicon.ico",
        RedirectView.as_view(url=static("img/favicon.svg"), permanent=True),
        name="favicon",
    ),
    path("accounts/login/", account_views.sign_in, name="login"),
    path("accounts/logout/", account_views.sign_out, name="logout"),
    path("accounts/keepalive/", account_views.keepalive, name="keepalive"),
    path("accounts/2fa/setup/", account_views.two_factor_setup, name="two_factor_setup"),
    path("accounts/2fa/verify/", account_views.two_factor_verify, name="two_factor_verify"),
    path("p/<slug:practice_slug>/", include(tenant_patterns)),
    path("admin/", admin_site.urls),
    path("support/", include("compliance.support_urls")),
    path("api/v1/", include("receptionist_api.urls")),
    path("mcp/", mcp_endpoint, name="mcp"),
    path("integrations/", include("ehr.urls")),
]
