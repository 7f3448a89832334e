"""Bearer tokens -> the API client -> its practice, which scopes the rest of the request.

A token is valid while its django-oauth-toolkit AccessToken exists and has not expired AND its
client is not revoked (revoking also deletes the tokens: belt and braces); the
practice is always the token's, never taken from the request. Authentication itself enters the
practice's `tenant_context` (on the stack `ReceptionistAPIView.dispatch` unwinds), so everything
after it, the token-and-client lookup included, runs under that practice's row-level security.
One round trip: entering the tenant, and token, client and practice read in one statement
under it, go to the database together.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from oauth2_provider.models import AccessToken
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from accounts.models import Practice
from core.statements import Batch, CompiledQuery, made_statement
from core.tenancy import cross_tenant, tenant_context_reading
from receptionist_api.errors import InsufficientScope
from scheduling.models import ApiClient, ApiScope

TENANT_STACK = "_api_tenant_stack"  # set on the Django request by ReceptionistAPIView.dispatch

# application id -> practice id, and token checksum -> practice id. A client never changes
# practice, so these are facts worth remembering: they let a request enter its tenant first
# and then read token, client and practice in ONE statement under that tenant's row-level
# security. Nothing else is remembered: expiry, revocation, scopes and the token's very
# existence are read on every request. The token map is bounded (tokens live an hour; a full
# map is dropped and relearned, at one query per token).
_practice_of_application: dict[int, int] = {}
_practice_of_token: dict[str, int] = {}
_PRACTICE_OF_TOKEN_MAX = 10_000


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


def practice_id_of_token(checksum: str) -> int | None:
    """The practice whose API client a token was issued to; None for an unknown token (one
    query, outside any tenant: tokens are not tenant rows)."""
    practice_id = _practice_of_token.get(checksum)
    if practice_id is not None:
        return practice_id
    application_id = (
        AccessToken.objects.filter(token_checksum=checksum)
        .values_list("application_id", flat=True)
        .first()
    )
    if application_id is None:
        return None
    practice_id = practice_id_of_application(application_id)
    if practice_id is not None:
        if len(_practice_of_token) >= _PRACTICE_OF_TOKEN_MAX:
            _practice_of_token.clear()
        _practice_of_token[checksum] = practice_id
    return practice_id


class ReadsWithPrincipal:
    """A view whose first read goes to the database with the principal's (one round trip
    fewer). Its statements run under the token's practice before the token is judged, so
    they read nothing a refused request could see: their rows stay in the process, and are
    only handed to the view once the request is authenticated (`read_with_principal`)."""

    read_with_principal: list[list[tuple[Any, ...]]] | None = None

    def reads_with_principal(self, request: Request, practice_id: int) -> Batch:
        return ()


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


# What authentication reads of a token, in the model's field order (`Model.from_db` needs it).
_TOKEN_FIELDS = tuple(
    f.attname
    for f in AccessToken._meta.concrete_fields
    if f.attname in {"id", "application_id", "expires", "scope"}
)


@cache
def _principal_sql() -> str:
    """The token by checksum, with its practice's live client (and that practice) if any:
    LEFT JOINs, so a surviving token of a revoked client is told from an unknown token. Columns
    from the models' own metadata; run inside the practice's tenant context."""
    token, client, practice = (m._meta.db_table for m in (AccessToken, ApiClient, Practice))
    columns = [f't."{AccessToken._meta.get_field(name).column}"' for name in _TOKEN_FIELDS]
    columns += [f'c."{f.column}"' for f in ApiClient._meta.concrete_fields]
    columns += [f'p."{f.column}"' for f in Practice._meta.concrete_fields]
    return (
        f'SELECT {", ".join(columns)} FROM "{token}" t'  # noqa: S608 - model metadata only
        f' LEFT JOIN "{client}" c ON c."application_id" = t."application_id"'
        f' AND c."practice_id" = %s AND c."revoked_at" IS NULL'
        f' LEFT JOIN "{practice}" p ON p."id" = c."practice_id"'
        f' WHERE t."token_checksum" = %s LIMIT 1'
    )


def _principal_statement() -> CompiledQuery:
    """Prepared on the server once per connection."""
    return made_statement(
        ("api-principal",),
        lambda: CompiledQuery(_principal_sql(), ((True, "practice"), (True, "checksum"))).prepare(),
    )


def _principal(rows: list[tuple[Any, ...]]) -> tuple[Any, ApiClient | None] | None:
    """(token, live client with its practice, or None if revoked), or None for no such token,
    from the principal statement's rows; the models are built from the row without the ORM's
    query machinery."""
    if not rows:
        return None
    row = rows[0]
    n_token, n_client = len(_TOKEN_FIELDS), len(ApiClient._meta.concrete_fields)
    token = AccessToken.from_db(DEFAULT_DB_ALIAS, _TOKEN_FIELDS, row[:n_token])
    if row[n_token] is None:  # no live client of this practice holds the token's application
        return token, None
    client = ApiClient.from_db(
        DEFAULT_DB_ALIAS, _client_fields(), row[n_token : n_token + n_client]
    )
    client.practice = Practice.from_db(
        DEFAULT_DB_ALIAS, _practice_fields(), row[n_token + n_client :]
    )
    return token, client


@cache
def _client_fields() -> list[str]:
    return [f.attname for f in ApiClient._meta.concrete_fields]


@cache
def _practice_fields() -> list[str]:
    return [f.attname for f in Practice._meta.concrete_fields]


class ApiClientAuthentication(BaseAuthentication):
    """`Authorization: Bearer <token>` from the token endpoint. Unknown, expired or malformed
    tokens answer 401 with a Bearer challenge (RFC 6750); a revoked client's too."""

    realm = "receptionist-api"

    def authenticate(self, request: Request) -> tuple[ApiPrincipal, Any] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != b"bearer":
            return None
        found = None
        view: Any = None
        along: Batch = ()
        along_rows: list[list[tuple[Any, ...]]] = []
        if len(parts) == 2:
            # Stored as the SHA-256 checksum of the token text, as DOT's validator looks it up.
            checksum = hashlib.sha256(parts[1].decode("latin-1").encode()).hexdigest()
            practice_id = practice_id_of_token(checksum)
            if practice_id is not None:
                stack = getattr(request._request, TENANT_STACK, None)
                if stack is None:
                    raise ImproperlyConfigured(
                        "ApiClientAuthentication needs a ReceptionistAPIView"
                    )
                # The tenant entered in the same round trip as the principal's read, and the
                # view's first read with them (`ReadsWithPrincipal`).
                values = {"practice": practice_id, "checksum": checksum}
                view = (getattr(request, "parser_context", None) or {}).get("view")
                along = (
                    view.reads_with_principal(request, practice_id)
                    if isinstance(view, ReadsWithPrincipal)
                    else ()
                )
                rows, *along_rows = stack.enter_context(
                    tenant_context_reading(practice_id, [(_principal_statement(), values), *along])
                )
                found = _principal(rows)
        if found is None or found[0].is_expired():
            request.bearer_error = "invalid_token"
            return None
        token, client = found
        if client is None:
            request.bearer_error = "invalid_token"
            raise exceptions.AuthenticationFailed("This API client has been revoked.")
        if along:
            view.read_with_principal = along_rows
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
    target_class = "receptionist_api.authentication.ApiClientAuthentication"
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
