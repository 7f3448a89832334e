"""django-oauth-toolkit wiring for the receptionist API's client-credentials grant.

Configured in `settings.OAUTH2_PROVIDER`. A DOT `Application` is only usable here through its
`ApiClient`, which binds it to one practice and lists the scopes it was granted:

* `ApiClientValidator` refuses clients without an active `ApiClient` (revoked -> invalid_client);
* `ApiClientScopes` offers a client exactly its granted scopes, so asking for more is
  `invalid_scope` (400) and asking for none grants all of them;
* `FormOrJSONOAuthLibCore` reads the token request as a form or as JSON (the contract allows
  both; DOT's own JSON backend is deprecated and form-only clients must keep working).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import TooManyFieldsSent, TooManyFilesSent
from django.http import HttpRequest, UnreadablePostError
from django.http.multipartparser import MultiPartParserError
from oauth2_provider.oauth2_backends import OAuthLibCore
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.scopes import SettingsScopes

from core import safejson
from core.tenancy import cross_tenant
from scheduling.models import ApiClient


def api_client_of(application: Any) -> ApiClient | None:
    """The active ApiClient of a DOT application, whatever practice it belongs to.

    Called before any practice is known (that is what it finds out), hence cross-tenant.
    """
    if application is None:
        return None
    with cross_tenant("receptionist API: find the practice of an OAuth2 client"):
        client = (
            ApiClient.objects.select_related("practice")
            .filter(application_id=application.pk)
            .first()
        )
    return client if client is not None and client.is_active else None


class ApiClientValidator(OAuth2Validator):
    def _load_application(self, client_id: str, request: Any) -> Any:
        # PostgreSQL's text cannot hold NUL: such an id is simply unknown (invalid_client).
        if client_id is None or "\x00" in str(client_id) or len(str(client_id)) > 100:
            return None
        return super()._load_application(client_id, request)

    def authenticate_client(self, request: Any, *args: Any, **kwargs: Any) -> bool:
        if not super().authenticate_client(request, *args, **kwargs):
            return False
        request.api_client = api_client_of(request.client)
        return request.api_client is not None


class ApiClientScopes(SettingsScopes):
    def _granted(self, application: Any, request: Any) -> list[str]:
        client = getattr(request, "api_client", None) or api_client_of(application)
        if client is None:
            return []
        known = set(super().get_available_scopes(application, request))
        return [scope for scope in client.scopes if scope in known]

    def get_available_scopes(
        self, application: Any = None, request: Any = None, *args: Any, **kwargs: Any
    ) -> list[str]:
        return self._granted(application, request)

    def get_default_scopes(
        self, application: Any = None, request: Any = None, *args: Any, **kwargs: Any
    ) -> list[str]:
        return self._granted(application, request)


def _form_value(value: Any) -> str:
    # `"scope": ["a", "b"]` is the natural JSON spelling of the form's "a b".
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value)


class FormOrJSONOAuthLibCore(OAuthLibCore):
    def extract_body(self, request: HttpRequest) -> list[tuple[str, str]]:
        if request.content_type == "application/json":
            try:
                data = safejson.loads(request.body or b"{}")
            except ValueError:
                return []
            if not isinstance(data, dict):
                return []
            return [(str(k), _form_value(v)) for k, v in data.items() if v is not None]
        try:
            return list(super().extract_body(request))
        except (MultiPartParserError, TooManyFieldsSent, TooManyFilesSent, UnreadablePostError):
            # A body Django cannot read as a form (a multipart one without its boundary): an
            # empty body, so the grant is an invalid_request.
            return []
