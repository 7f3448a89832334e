"""The intent resolver's development set: specialty practices configured the ordinary way (a
name and a few phrases per type, as a manager types them) and sentences callers say, none of
which contains a configured phrase word for word unless noted. `None` means the resolver must
answer nothing (the agent takes a message)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TypeSpec:
    key: str
    name: str
    phrases: tuple[str, ...]
    instructions: str = ""
    new_patients: bool = True
    existing_patients: bool = True


@dataclass(frozen=True)
class Case:
    practice: str
    sentence: str
    expected: str | None
    status: str = "existing"
    notes: str = field(default="", compare=False)


PRACTICES: dict[str, tuple[TypeSpec, ...]] = {
    # As in demo/bellavista-plastic-surgery.json.
    "plastic": (
        TypeSpec(
            "new-consult",
            "New Patient Consultation",
            (
                "rhinoplasty consultation",
                "nose job",
                "breast augmentation consult",
                "facelift consultation",
                "tummy tuck",
                "body contouring",
                "cosmetic surgery consultation",
                "consultation",
            ),
            "Please complete the pre-consultation questionnaire we text you.",
        ),
        TypeSpec(
            "procedure-day",
            "Procedure Day",
            ("schedule my surgery", "book my procedure", "surgery date"),
            "Pre-op clearance is required before your procedure day.",
            new_patients=False,
        ),
        TypeSpec(
            "post-op",
            "Post-op Follow-up",
            ("post-op", "follow up after surgery", "check my stitches", "stitches removed"),
            new_patients=False,
        ),
    ),
    # As in demo/happy-smiles.json.
    "dental": (
        TypeSpec(
            "cleaning",
            "Cleaning",
            ("cleaning", "teeth cleaned", "hygiene visit", "checkup and cleaning"),
            "Arrive 10 minutes early.",
        ),
        TypeSpec("exam", "Exam", ("exam", "checkup", "look at my teeth"), new_patients=False),
        TypeSpec(
            "new-patient-exam",
            "New Patient Exam",
            ("new patient", "first visit", "become a patient"),
            "Bring your insurance card and a photo ID.",
            existing_patients=False,
        ),
        TypeSpec(
            "root-canal",
            "Root Canal",
            ("root canal", "tooth pain", "toothache"),
            new_patients=False,
        ),
    ),
    "eye": (
        TypeSpec(
            "cataract-eval",
            "Cataract Evaluation",
            ("cataract evaluation", "cloudy vision"),
            "Plan on two hours: your pupils will be dilated, bring a driver.",
        ),
        TypeSpec(
            "glaucoma",
            "Glaucoma Check",
            ("glaucoma check", "pressure test"),
        ),
        TypeSpec(
            "lasik-consult",
            "LASIK Consultation",
            ("lasik consultation", "laser eye surgery"),
            "Stop wearing soft contact lenses a week before.",
        ),
        TypeSpec(
            "eye-exam",
            "Comprehensive Eye Exam",
            ("eye exam", "new glasses", "vision test"),
        ),
        TypeSpec(
            "bleph-consult",
            "Blepharoplasty Consultation",
            ("blepharoplasty consult", "eyelid surgery"),
        ),
    ),
    "derm": (
        TypeSpec(
            "skin-check",
            "Full Body Skin Check",
            ("skin check", "mole check", "skin cancer screening"),
        ),
        TypeSpec(
            "mohs",
            "Mohs Surgery Consultation",
            ("mohs consultation", "skin cancer removal"),
            new_patients=False,
        ),
        TypeSpec(
            "botox",
            "Botox and Fillers",
            ("botox appointment", "filler appointment", "wrinkle treatment"),
        ),
        TypeSpec(
            "acne",
            "Acne Consultation",
            ("acne consultation", "breakouts"),
        ),
    ),
    "ortho": (
        TypeSpec(
            "knee-consult",
            "Knee Consultation",
            ("knee consultation", "knee pain"),
        ),
        TypeSpec(
            "joint-replacement",
            "Joint Replacement Consultation",
            ("joint replacement consult", "hip replacement", "knee replacement"),
        ),
        TypeSpec(
            "sports-injury",
            "Sports Injury Visit",
            ("sports injury", "sprained ankle"),
        ),
        TypeSpec(
            "fracture-follow-up",
            "Fracture Follow-up",
            ("cast check", "broken bone follow up"),
            new_patients=False,
        ),
        TypeSpec(
            "spine",
            "Spine Evaluation",
            ("back pain", "spine evaluation"),
        ),
    ),
}

NEGATIVES = (
    "what are your hours",
    "can I pay my bill",
    "do you take Aetna",
    "I want to cancel",
    "where do I park",
    "I need to cancel my appointment",
    "what's your address",
    "can I speak to someone in billing",
    "is the doctor in today",
    "I'm returning a call from your office",
    "do you validate parking",
    "how much does it cost",
    "can you fax my records",
    "what time do you close on Friday",
)

CASES: tuple[Case, ...] = (
    *(Case(practice, sentence, None, "new") for practice in PRACTICES for sentence in NEGATIVES),
    # plastic surgery
    Case("plastic", "I want a rhinoplasty", "new-consult", "new"),
    Case("plastic", "rhinoplasty", "new-consult", "new"),
    Case("plastic", "I'm interested in a facelift", "new-consult", "new"),
    Case("plastic", "breast augmentation", "new-consult", "new"),
    Case("plastic", "I'd like to talk to someone about getting my nose done", "new-consult", "new"),
    Case("plastic", "um I was thinking about a a nose job", "new-consult", "new"),
    Case("plastic", "I want to get my eyelids done", "new-consult", "new"),
    Case("plastic", "I'm thinking about lipo", "new-consult", "new"),
    Case("plastic", "could I come in about a boob job", "new-consult", "new"),
    Case("plastic", "I want to see about an abdominoplasty", "new-consult", "new"),
    Case("plastic", "I'm interested in breast implants", "new-consult", "new"),
    Case("plastic", "I need my sutures taken out", "post-op"),
    Case("plastic", "I had surgery last week and need my follow-up", "post-op"),
    Case("plastic", "I'm ready to set a date for my surgery", "procedure-day"),
    Case("plastic", "I'd like to schedule my operation", "procedure-day"),
    Case("plastic", "blepharoplsty please", "new-consult", "new"),
    # dental
    Case("dental", "I need a teeth cleaning", "cleaning"),
    Case("dental", "it's time for my six month cleaning", "cleaning"),
    Case("dental", "not a cleaning, I think I cracked a tooth", None),
    Case("dental", "I've got a really bad toothache", "root-canal"),
    Case("dental", "my tooth is killing me", "root-canal"),
    Case("dental", "I'm new and want to become a patient", "new-patient-exam", "new"),
    Case("dental", "I need a checkup", "exam"),
    Case("dental", "my dentist said I need a root canal", "root-canal"),
    Case("dental", "I need a dental cleaning please", "cleaning", "new"),
    # ophthalmology
    Case("eye", "I think I have cataracts, everything is blurry", "cataract-eval"),
    Case("eye", "I need my eye pressure checked", "glaucoma"),
    Case("eye", "glocoma check", "glaucoma"),
    Case("eye", "I have glaucoma and need my check", "glaucoma"),
    Case("eye", "I want to get lasik", "lasik-consult", "new"),
    Case("eye", "I'm tired of wearing glasses, can I get laser surgery", "lasik-consult", "new"),
    Case("eye", "I need a new prescription for my glasses", "eye-exam"),
    Case("eye", "my eyelids are droopy and I want them fixed", "bleph-consult"),
    Case("eye", "I want to see about a blepharoplasty", "bleph-consult"),
    Case("eye", "annual eye exam please", "eye-exam"),
    Case("eye", "I'd like a cataract consult", "cataract-eval"),
    # dermatology
    Case("derm", "I have a mole I want looked at", "skin-check"),
    Case("derm", "I need a full body skin exam", "skin-check"),
    Case("derm", "I was diagnosed with basal cell and need Mohs", "mohs"),
    Case("derm", "Mohs", "mohs"),
    Case("derm", "my doctor found a basal cell carcinoma", "mohs"),
    Case("derm", "I want botox", "botox", "new"),
    Case("derm", "I'd like some lip filler", "botox", "new"),
    Case("derm", "do you do botox, I want to book", "botox", "new"),
    Case("derm", "my teenager has bad acne", "acne", "new"),
    Case("derm", "I keep breaking out", "acne", "new"),
    # orthopedics
    Case("ortho", "my knee has been hurting for weeks", "knee-consult", "new"),
    Case("ortho", "I want to talk about a hip replacement", "joint-replacement", "new"),
    Case("ortho", "I think I need a new knee, the arthritis is bad", "joint-replacement", "new"),
    Case("ortho", "I sprained my ankle playing soccer", "sports-injury", "new"),
    Case("ortho", "I broke my wrist and need my cast checked", "fracture-follow-up"),
    Case("ortho", "my lower back is killing me", "spine", "new"),
    Case("ortho", "I tore my ACL", "sports-injury", "new"),
)
