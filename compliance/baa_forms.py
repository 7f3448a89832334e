"""Forms for the compliance officer's BAA pages: drafts, the signed PDF, execution, termination."""

from __future__ import annotations

from datetime import date
from typing import Any

from django import forms
from django.core.files.uploadedfile import UploadedFile

from core.formfields import BoundedDateField

PDF_MAGIC = b"%PDF-"
MAX_PDF_BYTES = 10 * 1024 * 1024  # a scanned, countersigned agreement fits well within this


def read_pdf(upload: UploadedFile | None) -> bytes:
    """The uploaded file's bytes if it is a PDF within the size limit (ValidationError if not)."""
    if upload is None:
        raise forms.ValidationError("Choose the signed agreement (a PDF).")
    if upload.size is not None and upload.size > MAX_PDF_BYTES:
        raise forms.ValidationError(
            f"The file is {upload.size / 1048576:.1f} MB; the limit is "
            f"{MAX_PDF_BYTES // 1048576} MB."
        )
    data = upload.read(MAX_PDF_BYTES + 1)
    if len(data) > MAX_PDF_BYTES:
        raise forms.ValidationError(f"The limit is {MAX_PDF_BYTES // 1048576} MB.")
    if not data.startswith(PDF_MAGIC):
        raise forms.ValidationError("This is not a PDF: upload the signed agreement as a PDF.")
    return data


def _date_input() -> forms.DateInput:
    return forms.DateInput(attrs={"type": "date"})


class DraftForm(forms.Form):
    practice_signer_name = forms.CharField(
        required=False, max_length=200, label="Practice signatory"
    )
    practice_signer_title = forms.CharField(
        required=False, max_length=200, label="Practice signatory's title"
    )
    practice_signer_email = forms.EmailField(required=False, label="Practice signatory's email")
    hello_signer_name = forms.CharField(required=False, max_length=200, label="Hello signatory")
    hello_signer_title = forms.CharField(
        required=False, max_length=200, label="Hello signatory's title"
    )
    notes = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), max_length=4000
    )


class UploadForm(forms.Form):
    signed_pdf = forms.FileField(
        label="Signed agreement (PDF)",
        help_text=f"PDF only, up to {MAX_PDF_BYTES // 1048576} MB. Its SHA-256 is kept with it.",
        widget=forms.ClearableFileInput(attrs={"accept": "application/pdf,.pdf"}),
    )

    def clean_signed_pdf(self) -> bytes:
        return read_pdf(self.cleaned_data.get("signed_pdf"))


class ExecuteForm(forms.Form):
    """Who signed, when, and from/until when it applies. The PDF may come with it, or have
    been uploaded before (`has_pdf`)."""

    practice_signer_name = forms.CharField(max_length=200, label="Practice signatory")
    practice_signer_title = forms.CharField(
        required=False, max_length=200, label="Practice signatory's title"
    )
    practice_signer_email = forms.EmailField(required=False, label="Practice signatory's email")
    hello_signer_name = forms.CharField(max_length=200, label="Hello signatory")
    hello_signer_title = forms.CharField(
        required=False, max_length=200, label="Hello signatory's title"
    )
    executed_on = BoundedDateField(label="Signed by both parties on", widget=_date_input())
    effective_on = BoundedDateField(label="In force from", widget=_date_input())
    expires_on = BoundedDateField(
        required=False,
        label="Last day in force",
        help_text="Leave empty if the agreement has no fixed end.",
        widget=_date_input(),
    )
    signed_pdf = forms.FileField(
        required=False,
        label="Signed agreement (PDF)",
        widget=forms.ClearableFileInput(attrs={"accept": "application/pdf,.pdf"}),
    )

    def __init__(self, *args: Any, has_pdf: bool = False, today: date | None = None, **kw: Any):
        super().__init__(*args, **kw)
        self.has_pdf = has_pdf
        self.today = today or date.today()
        self.fields["signed_pdf"].help_text = (
            "Already uploaded; choose a file only to replace it."
            if has_pdf
            else f"Required: PDF only, up to {MAX_PDF_BYTES // 1048576} MB."
        )

    def clean_signed_pdf(self) -> bytes | None:
        upload = self.cleaned_data.get("signed_pdf")
        if upload is None and self.has_pdf:
            return None
        return read_pdf(upload)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        executed, effective, expires = (
            data.get("executed_on"),
            data.get("effective_on"),
            data.get("expires_on"),
        )
        if executed and executed > self.today:
            self.add_error("executed_on", "The signature date cannot be in the future.")
        if effective and expires and expires < effective:
            self.add_error("expires_on", "The last day in force is before the first.")
        return data


class TerminateForm(forms.Form):
    reason = forms.CharField(
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Why is the agreement ending?",
        error_messages={"required": "A termination needs a reason."},
    )
    confirm = forms.BooleanField(
        label="I understand that PHI stops being processed for this practice now",
        error_messages={"required": "Tick the box to confirm."},
    )
