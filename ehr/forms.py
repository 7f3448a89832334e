"""The connection page's Nextech form: what the practice enters about its own Nextech account.

The password is write-only: the field never renders a value back (not even after a failed
submission), and the page never reads the stored credentials.
"""

from __future__ import annotations

from typing import Any

from django import forms

from ehr.models import ConnectionKind, EHRConnection
from ehr.nextech.config import SELECT_API_URL


class NextechConnectionForm(forms.Form):
    api_base_url = forms.URLField(
        label="Select API base URL",
        initial=SELECT_API_URL,
        max_length=300,
        assume_scheme="https",
        help_text="Nextech's Select API (FHIR STU3); change it only for a test system.",
    )
    practice_id = forms.CharField(
        label="Nextech practice id (nx-practice-id)",
        max_length=100,
        help_text="The practice's id in Nextech, sent with every request.",
    )
    ehr_location_id = forms.IntegerField(
        label="Nextech location id",
        min_value=1,
        help_text="The id of this location in Nextech.",
    )
    username = forms.CharField(
        label="Service username",
        max_length=200,
        help_text="The practice's Nextech service user (its Azure AD sign-in).",
    )
    password = forms.CharField(
        label="Service password",
        max_length=200,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Stored encrypted; never shown again. Enter it anew to change it.",
    )

    def __init__(
        self,
        *args: Any,
        connection: EHRConnection | None = None,
        location_ehr_id: int | None = None,
        prefix: str | None = None,
        **kwargs: Any,
    ) -> None:
        initial = dict(kwargs.pop("initial", None) or {})
        if connection is not None and connection.kind == ConnectionKind.NEXTECH:
            initial.setdefault("api_base_url", connection.base_url)
            initial.setdefault("practice_id", connection.subdomain)
            initial.setdefault("ehr_location_id", connection.ehr_location_id)
        if location_ehr_id is not None:
            initial.setdefault("ehr_location_id", location_ehr_id)
        kwargs.update(initial=initial, prefix=prefix)
        super().__init__(*args, **kwargs)

    def clean_api_base_url(self) -> str:
        return str(self.cleaned_data["api_base_url"]).rstrip("/")

    def clean_practice_id(self) -> str:
        return str(self.cleaned_data["practice_id"]).strip()

    def clean_username(self) -> str:
        return str(self.cleaned_data["username"]).strip()
