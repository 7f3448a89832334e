"""What every signed-in person relies on: help texts and errors tied to their fields (every
aria-describedby names an element that exists), times in the practice's zone with the zone
named, the idle sign-out explained on the sign-in page, a favicon."""

from __future__ import annotations

import re
import time
from html.parser import HTMLParser

import pytest

from accounts.models import Role
from tests.calls.factories import TURNS, desk_for
from tests.calls.test_escalation_world import clinic
from tests.conftest import verify_second_factor
from tests.factories import MembershipFactory, UserFactory, sign_baa, staff_member

pytestmark = pytest.mark.django_db


class _Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.described: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(values["id"])
        for token in (values.get("aria-describedby") or "").split():
            self.described.append((tag, token))


def dangling(html: str) -> list[tuple[str, str]]:
    """(tag, id) of every aria-describedby reference with no element of that id."""
    parser = _Ids()
    parser.feed(html)
    return [(tag, ref) for tag, ref in parser.described if ref not in parser.ids]


def member(client, practice, *roles):
    user = UserFactory(totp=True)
    for role in roles:
        MembershipFactory(user=user, practice=practice, role=role)
    verify_second_factor(client, user)
    return user


def test_every_described_by_names_an_element_on_the_forms(client):
    surgery = clinic()
    sign_baa(surgery.practice)
    version = surgery.protocol("Fever", ["fever"], approve=False)
    login = client.get("/accounts/login/").content.decode()
    assert not dangling(login)
    user = staff_member(surgery.practice, Role.CLINICIAN)
    MembershipFactory(user=user, practice=surgery.practice, role=Role.PRACTICE_MANAGER)
    MembershipFactory(user=user, practice=surgery.practice, role=Role.COMPLIANCE_OFFICER)
    client.force_login(user)
    verify = client.get("/accounts/2fa/verify/").content.decode()
    assert 'aria-describedby="id_token_helptext"' in verify and 'id="id_token_helptext"' in verify
    assert not dangling(verify)
    verify_second_factor(client, user)

    slug = surgery.practice.slug
    kind = surgery.types["facelift"].pk
    pages = [
        f"/p/{slug}/protocols/new/",
        f"/p/{slug}/protocols/{version.protocol_id}/edit/",
        f"/p/{slug}/protocols/{version.protocol_id}/versions/{version.pk}/approve/",
        f"/p/{slug}/protocols/console/",
        f"/p/{slug}/protocols/approval-policy/",
        f"/p/{slug}/on-call/",
        f"/p/{slug}/scheduling/types/{kind}/",
        f"/p/{slug}/api-clients/",
        f"/p/{slug}/configuration/",
        f"/p/{slug}/compliance/baa/new/",
        f"/p/{slug}/compliance/audit/",
        f"/p/{slug}/calls/retention/",
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert not dangling(html), (url, dangling(html))
    invalid = client.post(f"/p/{slug}/protocols/new/", {"name": "", "triggers": ""})
    html = invalid.content.decode()
    assert "_error" in html and not dangling(html)


def test_a_wrong_code_is_described_too(client):
    client.force_login(UserFactory(totp=True))
    wrong = client.post("/accounts/2fa/verify/", {"token": "000000"}).content.decode()
    assert 'aria-describedby="id_token_helptext id_token_error"' in wrong
    assert 'id="id_token_error"' in wrong and not dangling(wrong)


def test_protocol_approval_times_and_transcript_turns_say_the_practice_zone(client):
    surgery = clinic()  # America/Los_Angeles
    version = surgery.protocol("Fever", ["fever"])
    member(client, surgery.practice, Role.CLINICIAN, Role.FRONT_DESK)
    page = client.get(f"/p/{surgery.practice.slug}/protocols/{version.protocol_id}/")
    approval = re.search(r'id="live-approval">Approved ([^<]*?)\.', page.content.decode())
    assert approval and re.search(r"\d{2}:\d{2} P[SD]T", approval.group(1)), approval

    sign_baa(surgery.practice)
    call = desk_for(surgery.practice).call(turns=TURNS)
    shown = client.post(
        f"/p/{surgery.practice.slug}/calls/{call.pk}/reveal/", {"reason": "checking the booking"}
    ).content.decode()
    assert '<time datetime="2026-05-04T10:00:01-07:00">10:00:01 PDT</time>' in shown


def test_the_sign_in_page_says_why_you_were_signed_out(client, practice, settings):
    member(client, practice, Role.FRONT_DESK)
    page = client.get("/p/alpha/").content.decode()
    assert f'data-idle-seconds="{settings.IDLE_TIMEOUT_SECONDS}"' in page
    assert 'id="idle-warning"' in page and "Stay signed in" in page

    assert client.get("/accounts/keepalive/").status_code == 204
    session = client.session
    session["last_activity"] = time.time() - settings.IDLE_TIMEOUT_SECONDS - 1
    session.save()
    expired = client.get("/p/alpha/bookings/")
    assert expired.status_code == 302
    assert expired["Location"].startswith("/accounts/login/?reason=idle&next=")
    login = client.get(expired["Location"]).content.decode()
    assert 'id="signed-out-reason"' in login and "15 minutes without activity" in login
    assert "data-idle-seconds" not in login  # nobody is signed in any more
    assert "signed-out-reason" not in client.get("/accounts/login/").content.decode()


def test_the_pages_idle_clock_signs_out_and_lands_on_the_reason(client, practice):
    member(client, practice, Role.FRONT_DESK)
    response = client.post("/accounts/logout/", {"reason": "idle"})
    assert response["Location"] == "/accounts/login/?reason=idle"
    assert client.get("/p/alpha/").status_code == 302  # really signed out


def test_a_favicon(client):
    page = client.get("/accounts/login/").content.decode()
    assert '<link rel="icon" href="/static/img/favicon.svg" type="image/svg+xml">' in page
    icon = client.get("/favicon.ico")
    assert icon.status_code == 301 and icon["Location"] == "/static/img/favicon.svg"
