"""A demo practice on Nextech: ophthalmology and dermatology, with the appointment types whose
weight the product is about (a 90-minute dilated cataract evaluation, a half-day Mohs block only
Mohs-trained surgeons take), and its service user.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import NextechSandbox

DEMO_PRACTICE_ID = "4001"
DEMO_USERNAME = "hello-service@demo-eye-skin.example"
DEMO_PASSWORD = "demo-password"  # a sandbox credential

WEEKDAYS = [0, 1, 2, 3, 4]


def demo_practice() -> dict[str, Any]:
    return {
        "id": DEMO_PRACTICE_ID,
        "name": "Lakeside Eye & Skin",
        "timezone": "America/Chicago",
        "booking_preference": "book",
        "locations": [
            {"id": "1", "name": "Lakeside Eye & Skin - Main", "phone": "312-555-0100"},
            {"id": "2", "name": "Lakeside Eye & Skin - Procedure Suite", "phone": "312-555-0101"},
        ],
        "practitioners": [
            {"id": "9323", "family": "Walters", "given": "Sherri"},  # ophthalmology
            {"id": "9324", "family": "Okafor", "given": "Daniel"},  # Mohs-trained dermatology
            {"id": "9325", "family": "Lin", "given": "Maya"},  # general dermatology
            {"id": "9326", "family": "Reyes", "given": "Ana", "linked_user": False},  # no user
        ],
        "appointment_types": [
            {"id": "31", "name": "Cataract Evaluation", "duration": 90},
            {"id": "32", "name": "Glaucoma Check", "duration": 30},
            {"id": "33", "name": "Mohs Surgery", "duration": 240},
            {"id": "34", "name": "New Patient Skin Exam", "duration": 45},
        ],
        "appointment_purposes": [
            {"id": "201", "name": "Dilated exam"},
            {"id": "202", "name": "Intraocular pressure"},
            {"id": "203", "name": "Mohs micrographic surgery"},
            {"id": "204", "name": "Full-body skin check"},
        ],
        "templates": [
            {
                "practitioner": "9323",
                "location": "1",
                "weekdays": WEEKDAYS,
                "start": "08:00",
                "end": "16:00",
                "interval": 30,
                "appointment_types": ["31", "32"],
            },
            {
                "practitioner": "9324",
                "location": "2",
                "weekdays": [1, 3],
                "start": "08:00",
                "end": "16:00",
                "interval": 240,
                "appointment_types": ["33"],
            },
            {
                "practitioner": "9324",
                "location": "1",
                "weekdays": [0, 2, 4],
                "start": "09:00",
                "end": "17:00",
                "interval": 15,
                "appointment_types": ["34"],
            },
            {
                "practitioner": "9325",
                "location": "1",
                "weekdays": WEEKDAYS,
                "start": "09:00",
                "end": "17:00",
                "interval": 15,
                "appointment_types": ["34"],
            },
        ],
        "patients": [
            {
                "family": "Brimley",
                "given": ["Henry"],
                "birth_date": "1951-03-14",
                "phone": "312-555-0142",
                "email": "henry.brimley@example.com",
            },
        ],
    }


def load_demo(sandbox: NextechSandbox) -> None:
    with sandbox.state.lock:
        sandbox.state.load_practice(demo_practice())
        from .store import User

        sandbox.state.users[DEMO_USERNAME] = User(DEMO_USERNAME, DEMO_PASSWORD, [DEMO_PRACTICE_ID])
