"""A development set of caller sentences for screening: for each protocol of the demo practices
(and two with qualified triggers, as clinicians write them), urgent sentences that must escalate
and benign look-alikes (qualifiers playing it down, negations, questions about what is normal)
that must not. Built for the kinds, not the wording: see `test_screen_sentences`."""

from __future__ import annotations

# Protocols as the demo practices configure them (demo/*.json), and two qualified ones.
PROTOCOLS: dict[str, tuple[str, ...]] = {
    "post-op-bleeding": ("bleeding that won't stop", "fever", "severe swelling"),
    "dental-trauma": ("knocked out tooth", "swelling in my face", "can't swallow"),
    "facelift-hematoma": ("rapidly increasing swelling", "swelling on one side"),
    "cataract-vision": ("sudden vision loss", "severe eye pain", "curtain over my vision"),
}

LONG = (
    "Hi, sorry, this is going to take a minute, I had my procedure on Tuesday and my daughter "
    "drove me home and everything was fine the first night, I took the pills like they said and "
    "slept with my head up on two pillows, and today I was watching TV and "
)

# (protocol key, sentence)
URGENT: list[tuple[str, str]] = [
    ("post-op-bleeding", "The bleeding won't stop, I've changed the gauze three times."),
    ("post-op-bleeding", "It keeps bleeding through the bandage no matter what I do."),
    ("post-op-bleeding", "I have a fever of 102 since this morning."),
    ("post-op-bleeding", "I'm shivering and burning up tonight."),
    ("post-op-bleeding", "My face is really swollen, much worse than yesterday."),
    (
        "post-op-bleeding",
        LONG + "I noticed blood keeps dripping from behind my ear and it "
        "hasn't stopped for an hour.",
    ),
    (
        "post-op-bleeding",
        LONG + "I started feeling hot and shaky, I took my temperature and it's 101.5.",
    ),
    ("dental-trauma", "My son fell off his bike and knocked his front tooth out."),
    ("dental-trauma", "My whole cheek is swollen and it's getting bigger."),
    ("dental-trauma", "My face is swelling up after the extraction."),
    ("dental-trauma", "I can't swallow since the root canal, my throat feels tight."),
    (
        "dental-trauma",
        LONG + "my jaw started swelling really fast and now I can barely swallow my own spit.",
    ),
    ("facelift-hematoma", "The swelling is getting worse by the hour."),
    ("facelift-hematoma", "One side of my face is much more swollen than the other."),
    ("facelift-hematoma", "My left cheek is swelling up fast and it's tight."),
    ("facelift-hematoma", "The swelling keeps increasing and it's spreading down my neck."),
    (
        "facelift-hematoma",
        LONG + "I looked in the mirror and the right side of my face is "
        "swollen and hard, way bigger than the left, and it's getting worse.",
    ),
    ("cataract-vision", "All of a sudden I can't see out of my operated eye."),
    ("cataract-vision", "There's a dark curtain coming down over my vision."),
    ("cataract-vision", "The pain in my eye is unbearable."),
    ("cataract-vision", LONG + "suddenly everything went blurry and dark in my right eye."),
]

BENIGN: list[tuple[str, str]] = [
    ("post-op-bleeding", "The bleeding has stopped, can I take the dressing off?"),
    ("post-op-bleeding", "There's a little spotting on the gauze, is that normal?"),
    ("post-op-bleeding", "No fever, I just want to know when I can shower."),
    ("post-op-bleeding", "My temperature is normal, I checked twice."),
    ("post-op-bleeding", "The swelling is going down, is that normal?"),
    ("post-op-bleeding", "Is a little swelling normal after a facelift?"),
    ("post-op-bleeding", "I have mild swelling around my eyes, is that expected?"),
    (
        "post-op-bleeding",
        LONG + "I just wondered, the swelling seems a bit better today, "
        "when can I go back to work?",
    ),
    ("dental-trauma", "The swelling in my face is going down after the extraction, is that ok?"),
    ("dental-trauma", "Is some swelling normal after a filling?"),
    ("dental-trauma", "No swelling, just a dull ache, can I take ibuprofen?"),
    ("dental-trauma", "I can swallow fine, it's just a bit sore."),
    ("dental-trauma", "My tooth is a little loose after the cleaning, is that normal?"),
    ("facelift-hematoma", "The swelling on one side is improving, is that normal?"),
    ("facelift-hematoma", "There's a little swelling, it's about the same on both sides."),
    ("facelift-hematoma", "The swelling is going down slowly, when can I wear makeup?"),
    ("facelift-hematoma", "Is it normal for swelling to last two weeks?"),
    (
        "facelift-hematoma",
        LONG + "the swelling is much better than yesterday and the bruises "
        "are fading, so I wanted to move my follow-up.",
    ),
    ("cataract-vision", "My vision is a little blurry in the mornings, is that normal?"),
    ("cataract-vision", "My vision is improving every day, when can I drive?"),
    ("cataract-vision", "I have mild eye pain, is that normal after cataract surgery?"),
    ("cataract-vision", "No pain in the eye, just some itching."),
]

EMERGENCY: list[str] = [
    "I can't breathe.",
    "I have crushing chest pain.",
    "It's gushing blood and won't stop.",
    "My husband's face is drooping and his speech is slurred.",
    LONG + "now I'm really short of breath and my chest feels tight.",
]

NOT_EMERGENCY: list[str] = [
    "No chest pain and I can breathe fine.",
    "I'm breathing normally, just a bit tired.",
    "Not short of breath at all, just wanted to ask about my follow-up.",
]
