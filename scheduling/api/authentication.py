"""Bearer tokens -> the API client -> its practice, which scopes the rest of the request.

A token is valid while its django-oauth-toolkit AccessToken exists and has not expired AND its
client is not revoked (revoking also deletes the tokens: belt and braces); the
practice is always the token's, never taken from the request. Authentication itself enters the
practice's `tenant_context` (on the stack `ReceptionistAPIView.dispatch` unwinds), so everything
after it, the client lookup included, runs under that practice's row-level security.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from oauth2_provider.models import AccessToken
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from portal.models import Practice
from portal.tenancy import cross_tenant, tenant_context
from scheduling.api.errors import InsufficientScope
from scheduling.models import ApiClient, ApiScope

TENANT_STACK = "_api_tenant_stack"  # set on the Django request by ReceptionistAPIView.dispatch

# application id -> practice id. A client never changes practice, so this is a fact worth
# remembering: it spares every request a cross-tenant lookup (revocation is still checked on
# each request, inside the tenant).
_practice_of_application: dict[int, int] = {}


def practice_id_of_application(application_id: int) -> int | None:
    practice_id = _practice_of_application.get(application_id)
    if practice_id is None:
        with cross_tenant("receptionist API: which practice owns an OAuth2 client"):
            practice_id = (
                ApiClient.objects.filter(application_id=application_id)
                .values_list("practice_id", flat=True)
                .first()
            )
        if practice_id is not None:
            _practice_of_application[application_id] = practice_id
    return practice_id


@dataclass(frozen=True)
class ApiPrincipal:
    """`request.user` for API calls: the client, acting for its practice."""

    client: ApiClient
    token: Any  # oauth2_provider AccessToken

    is_authenticated = True
    is_anonymous = False
    is_active = True

    @property
    def practice(self) -> Practice:
        return self.client.practice

    @property
    def pk(self) -> str:
        return f"api-client:{self.client.pk}"

    def has_scope(self, scope: str) -> bool:
        """Granted to the token when issued AND still granted to the client now."""
        return scope in self.client.scopes and self.token.allow_scopes([scope])


def _access_token(raw: str) -> Any:
    """The live access token for a bearer string, looked up as DOT's validator does (by the
    SHA-256 checksum: tokens are not stored in clear), minus oauthlib's request machinery."""
    checksum = hashlib.sha256(raw.encode()).hexdigest()
    token = (
        AccessToken.objects.filter(token_checksum=checksum)
        .only("id", "application_id", "expires", "scope")
        .first()
    )
    return None if token is None or token.is_expired() else token


class ApiClientAuthentication(BaseAuthentication):
    """`Authorization: Bearer <token>` from the token endpoint. Unknown, expired or malformed
    tokens answer 401 with a Bearer challenge (RFC 6750); a revoked client's too."""

    realm = "receptionist-api"

    def authenticate(self, request: Request) -> tuple[ApiPrincipal, Any] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != b"bearer":
            return None
        token = _access_token(parts[1].decode("latin-1")) if len(parts) == 2 else None
        if token is None:
            request.bearer_error = "invalid_token"
            return None
        practice_id = practice_id_of_application(token.application_id)
        stack = getattr(request._request, TENANT_STACK, None)
        if stack is None:
            raise ImproperlyConfigured("ApiClientAuthentication needs a ReceptionistAPIView")
        client = None
        if practice_id is not None:
            stack.enter_context(tenant_context(practice_id))
            client = (
                ApiClient.objects.for_practice(practice_id)
                .select_related("practice")
                .filter(application_id=token.application_id, revoked_at__isnull=True)
                .first()
            )
        if client is None:
            request.bearer_error = "invalid_token"
            raise exceptions.AuthenticationFailed("This API client has been revoked.")
        return ApiPrincipal(client=client, token=token), token

    def authenticate_header(self, request: Request) -> str:
        error = getattr(request, "bearer_error", None)
        return f'Bearer realm="{self.realm}"' + (f', error="{error}"' if error else "")


class HasScope(BasePermission):
    """The view's `required_scope` must be in the token (403 `insufficient_scope` if not)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        principal = request.user
        if not isinstance(principal, ApiPrincipal):
            return False
        scope = getattr(view, "required_scope", None)
        if scope and not principal.has_scope(scope):
            raise InsufficientScope(f"This call needs the {scope} scope.")
        return True


class ApiClientAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "scheduling.api.authentication.ApiClientAuthentication"
    name = "oauth2"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "oauth2",
            "flows": {
                "clientCredentials": {
                    "tokenUrl": "/api/v1/oauth/token",
                    "scopes": {scope.value: scope.label for scope in ApiScope},
                }
            },
        }

    def get_security_requirement(self, auto_schema: Any) -> dict[str, list[str]]:
        scope = getattr(auto_schema.view, "required_scope", None)
        return {self.name: [scope] if scope else []}
