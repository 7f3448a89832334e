"""Vendor support's practice directory: search, BAA standing (agreeing with the gate), a link
that starts support access to that practice, the session visible and endable from it."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import timezone

from accounts.models import Role
from compliance import services, support_selectors
from compliance.gate import phi_allowed
from tests.conftest import verify_second_factor
from tests.factories import PracticeFactory, sign_baa, staff_member

pytestmark = pytest.mark.django_db


def test_lists_and_searches_practices_with_their_baa_standing(
    support_client, practice, other_practice
):
    sign_baa(practice)
    services.create_draft(other_practice)
    page = support_client.get("/support/").content.decode()
    assert 'id="practice-alpha"' in page and 'id="practice-beta"' in page
    assert "In force (version 1)" in page and "Not in force (latest: version 1, draft)" in page
    assert 'href="/support/impersonate/?practice=alpha"' in page
    found = support_client.get("/support/?q=surg").content.decode()
    assert 'id="practice-beta"' in found and 'id="practice-alpha"' not in found
    none = support_client.get("/support/?q=zzz").content.decode()
    assert "No practice matches" in none


def test_the_start_link_preselects_the_practice_and_the_session_can_be_ended_there(
    support_client, practice
):
    form = support_client.get("/support/impersonate/?practice=alpha").content.decode()
    assert '<option value="alpha" selected>' in form
    support_client.post(
        "/support/impersonate/",
        {"practice": "alpha", "reason": "agent books wrong type", "ticket": "SUP-7", "minutes": 15},
    )
    page = support_client.get("/support/").content.decode()
    assert 'id="open-sessions"' in page and "SUP-7" in page
    assert 'id="impersonation-banner"' in page
    ended = support_client.post("/support/impersonate/end/")
    assert ended["Location"] == "/support/"
    assert 'id="open-sessions"' not in support_client.get("/support/").content.decode()


def test_only_vendor_support_sees_the_directory(client, practice, other_practice):
    member = staff_member(practice, Role.PRACTICE_MANAGER)
    verify_second_factor(client, member)
    response = client.get("/support/")
    assert response.status_code == 403 and "Beta Surgery" not in response.content.decode()


def test_standing_agrees_with_the_gate(practice):
    """Expired, terminated, not yet effective, and in force: the directory's reading of loaded
    rows says what compliance.gate says."""
    cases = {}
    for slug, setup in {
        "none": lambda p: None,
        "draft": lambda p: services.create_draft(p),
        "in-force": sign_baa,
        "expired": lambda p: services.execute(
            services.create_draft(p),
            signed_pdf=b"%PDF-1.4\n",
            executed_on=date(2025, 1, 1),
            effective_on=date(2025, 1, 1),
            expires_on=date(2025, 12, 31),
            practice_signer_name="A",
            hello_signer_name="B",
        ),
        "future": lambda p: services.execute(
            services.create_draft(p),
            signed_pdf=b"%PDF-1.4\n",
            executed_on=date(2026, 1, 1),
            effective_on=timezone.localdate() + timedelta(days=10),
            practice_signer_name="A",
            hello_signer_name="B",
        ),
        "terminated": lambda p: services.terminate(
            services.execute(
                services.create_draft(p),
                signed_pdf=b"%PDF-1.4\n",
                executed_on=date(2026, 1, 1),
                effective_on=date(2026, 1, 1),
                practice_signer_name="A",
                hello_signer_name="B",
            ),
            reason="closed",
        ),
    }.items():
        p = PracticeFactory(slug=f"gate-{slug}")
        setup(p)
        cases[slug] = p
    standing = support_selectors.standings(list(cases.values()))
    for slug, p in cases.items():
        assert (standing[p.pk].in_force is not None) == phi_allowed(p), slug
    assert [s for s, p in cases.items() if standing[p.pk].in_force] == ["in-force"]
