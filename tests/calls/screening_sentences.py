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
# Every trigger above at once, for sentences written without a protocol in mind.
PROTOCOLS["any"] = tuple(dict.fromkeys(t for ts in list(PROTOCOLS.values()) for t in ts))

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
    "I can't catch my breath",
    "My chest is really tight and hurts",
    "My mom's face looks droopy on one side and she's slurring her words",
    "Blood is pouring out of my nose",
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

# More of both kinds, against every trigger at once (the second half, a fresh batch, measured
# before tuning: 15/15 urgent caught, 2/15 benign escalated).
URGENT += [
    ("any", "My face is swelling rapidly on the left side"),
    ("any", "The swelling is spreading to my neck"),
    ("any", "The swelling has doubled since this morning"),
    ("any", "One cheek is huge compared to the other"),
    ("any", "I've had chills all night"),
    ("any", "Blood is soaking through the dressing"),
    ("any", "My tooth got knocked out playing hockey"),
    ("any", "My face is swollen and I can hardly swallow"),
    ("any", "My eye hurts so much I can't open it"),
    ("any", "My vision suddenly went black"),
    ("any", "There's a sudden shadow in my vision"),
    ("any", "I'm bleeding and it won't stop"),
    ("any", "My cheek keeps getting bigger and it's really tight"),
    ("any", "The left side of my face is way more swollen than the right"),
    ("any", "I think I have a fever, I feel hot and shaky"),
    ("any", "The swelling is worse today than yesterday"),
    ("any", "It started as a little swelling but now it's huge"),
    ("any", "My jaw is swollen and it's spreading to my eye"),
    ("any", "I can barely swallow and my face is puffy"),
    ("any", "Is it normal that my swelling is getting worse every hour?"),
    ("any", "My temperature is 38.9"),
    ("any", "The incision is oozing and won't stop"),
    ("any", "The swelling just keeps growing"),
    ("any", "Since about an hour ago the right side of my neck has ballooned and feels tense"),
    ("any", "My gauze is completely soaked and blood is still dripping"),
    ("any", "Temperature has been 102 all day and I'm shaking"),
    ("any", "The swelling under my chin is increasing really quickly"),
    ("any", "Half my face is puffed up way more than the other half"),
    ("any", "I got hit with a ball and my front tooth came out"),
    ("any", "After the extraction my cheek has swollen up like a balloon and it's hard to swallow"),
    ("any", "I woke up and I cannot see anything out of my left eye"),
    ("any", "My eye is throbbing, it's the worst pain I've ever had"),
    (
        "any",
        "Ok so I had surgery Monday, and the kids were over, and we had dinner, and then I "
        "noticed my left cheek getting bigger and bigger, it's really hard now",
    ),
    ("any", "The bleeding from my incision just won't quit"),
    ("any", "I keep getting chills and sweats"),
    ("any", "It's swelling more and more on the left"),
    ("any", "There's a grey shadow over part of my vision since this afternoon"),
    ("any", "My lip and cheek are swelling fast after the filling"),
]
BENIGN += [
    ("any", "The swelling has gone down a lot"),
    ("any", "Is swelling normal a week after surgery?"),
    ("any", "I have slight swelling"),
    ("any", "My swelling is about the same as yesterday"),
    ("any", "Mild fever of 99, is that normal?"),
    ("any", "No bleeding, just bruising"),
    ("any", "A tiny bit of blood on the pillow, is that normal?"),
    ("any", "The bleeding stopped after I applied pressure"),
    ("any", "There is minimal swelling"),
    ("any", "The swelling is less than yesterday"),
    ("any", "The swelling is not getting worse"),
    ("any", "My face feels a little puffy, is that expected?"),
    ("any", "I was told swelling is normal, I just want to confirm my appointment"),
    ("any", "The swelling is finally subsiding"),
    ("any", "My eye is a bit sore"),
    ("any", "My vision is blurry but getting better"),
    ("any", "I can swallow okay now"),
    ("any", "The swelling is even on both sides and going down"),
    ("any", "How long will the swelling last?"),
    ("any", "When will the swelling go away?"),
    ("any", "I don't have a fever but my face is a bit puffy"),
    ("any", "Some bruising and mild swelling, is this normal?"),
    ("any", "The swelling looks better every day"),
    ("any", "Is it normal to have some swelling on one side?"),
    ("any", "Is some bleeding normal after a facelift?"),
    ("any", "My swelling went down overnight"),
    ("any", "Should I ice the swelling?"),
    ("any", "The swelling has been improving steadily"),
    ("any", "My face is only slightly swollen now"),
    ("any", "I noticed a small amount of swelling, is that typical?"),
    ("any", "The bruising is fading and the swelling is way down"),
    ("any", "I had a low fever yesterday but it's gone now"),
    ("any", "There's a bit of pinkish drainage, is that expected?"),
    ("any", "I have no swelling and no bleeding, I just want to reschedule"),
    ("any", "Both sides look equally puffy, which I assume is normal"),
    ("any", "The swelling is about half of what it was"),
    ("any", "Is mild puffiness around the eyes expected after a facelift?"),
    ("any", "Is a slight temperature of 99.5 normal?"),
    ("any", "My vision is a bit hazy but much clearer than yesterday"),
    ("any", "My tooth feels a little sensitive, is that normal?"),
    ("any", "I can swallow, it just feels a bit scratchy"),
    ("any", "Can I take Tylenol for the swelling?"),
]

# A second fresh batch (measured before tuning: 13/16 urgent caught, 2/15 benign escalated).
URGENT += [
    ("any", "My face is swollen on one side, should I go to the ER?"),
    ("any", "The bleeding hasn't let up for two hours"),
    ("any", "My whole jaw is swollen and getting tighter, what should I do?"),
    ("any", "My temp is 101.8, is that bad?"),
    ("any", "It's puffing up more every hour on my right cheek"),
    ("any", "The swelling suddenly got much worse tonight"),
    ("any", "I'm soaking through gauze every 20 minutes"),
    ("any", "My eye pain is severe and my vision is going dark"),
    ("any", "My kid's tooth was knocked clean out, can it be saved?"),
    ("any", "I can't swallow anything, not even water"),
    ("any", "The right side is swelling a lot more than the left"),
    ("any", "I have a fever and the incision is red"),
    ("any", "There's so much swelling I can barely open my mouth"),
    ("any", "I'm worried, my face keeps swelling up"),
    ("any", "The swelling is getting bigger, is this an emergency?"),
    ("any", "My face is swollen. Is that normal? It's getting worse every hour."),
]
BENIGN += [
    ("any", "My face is a little swollen. Is that normal?"),
    ("any", "The swelling is slowly coming down each day"),
    ("any", "I'm not running a fever, just tired"),
    ("any", "I took my temperature and it's fine"),
    ("any", "My lip is still a bit numb from the anesthetic"),
    ("any", "The swelling is pretty much gone"),
    ("any", "Just a touch of swelling left, is that ok?"),
    ("any", "Is it normal to still have some swelling after two weeks?"),
    ("any", "The bleeding was minor and it stopped quickly"),
    ("any", "My vision is back to normal"),
    ("any", "Everything is healing nicely, swelling is minimal"),
    ("any", "Is a little oozing normal on day two?"),
    ("any", "My eye feels mildly irritated, is that normal?"),
    ("any", "No trouble swallowing, just a sore throat from the tube"),
    ("any", "Swelling has been decreasing since Friday"),
]

# A third fresh batch (measured before tuning: 17/17 urgent caught, 3/15 benign escalated).
URGENT += [
    ("any", "I had my wisdom teeth out and now the side of my face is swelling like crazy"),
    ("any", "My face is getting more and more swollen since lunch"),
    ("any", "Blood keeps coming out of the incision no matter how hard I press"),
    ("any", "I'm running a high temperature and I feel awful"),
    (
        "any",
        LONG + "and honestly I didn't want to bother anyone but the swelling on the left is way "
        "worse than the right now and it's hard",
    ),
    (
        "any",
        LONG + "my son tripped on the stairs and his front tooth came right out, there's blood",
    ),
    ("any", "I'm having trouble swallowing and my neck is swollen"),
    ("any", "My eye suddenly went blurry and it really hurts"),
    ("any", "One side of my face looks twice as big as the other"),
    ("any", "The swelling is growing by the minute"),
    ("any", "I've got a fever and chills since last night"),
    ("any", "It won't stop bleeding"),
    ("any", "My cheek is swelling up fast, is that normal?"),
]
BENIGN += [
    ("any", "The swelling is a lot better than yesterday"),
    ("any", "I just have some mild swelling under my eyes"),
    ("any", "Is it normal to be a little puffy on day three?"),
    ("any", "There was a tiny bit of blood on the gauze this morning but nothing since"),
    ("any", "My fever broke last night and I feel fine now"),
    ("any", "I don't think I have a fever"),
    ("any", "The swelling on both sides looks even and it's going down"),
    (
        "any",
        LONG + "everything looks good, the swelling is going down nicely, I just wanted to ask "
        "when the stitches come out",
    ),
    ("any", "My tooth feels a bit loose after the cleaning, is that normal?"),
    ("any", "Swallowing is a little uncomfortable but fine"),
    ("any", "My vision is slightly blurry when I wake up, is that expected?"),
    ("any", "No chest pain, no trouble breathing, just tired"),
    ("any", "The swelling is decreasing each day"),
    ("any", "Is swelling on one side normal if it's getting smaller?"),
    ("any", "My bruising is spreading downward, is that normal?"),
]

# A fourth fresh batch, for the demo protocols (before tuning: 14/15 urgent, 4/15 benign).
URGENT += [
    ("post-op-bleeding", "Should I be concerned that my cheek is so swollen?"),
    ("post-op-bleeding", "I've been bleeding on and off all day and it's not slowing down"),
    ("post-op-bleeding", "I feel feverish and my incision is hot"),
    ("post-op-bleeding", "My whole face blew up overnight"),
    ("post-op-bleeding", "The drain is full of bright red blood again"),
    ("post-op-bleeding", "I have a 103 fever"),
    ("post-op-bleeding", "My neck is very swollen and tight"),
    ("dental-trauma", "My daughter's tooth got knocked out at soccer practice"),
    ("dental-trauma", "My face is really swollen from the tooth infection"),
    ("dental-trauma", "It hurts to swallow and my jaw is swelling"),
    (
        "dental-trauma",
        LONG + "my cheek started swelling and by now it's huge and I can hardly open my mouth",
    ),
    ("post-op-bleeding", LONG + "I got a chill and now I'm shaking and my temperature is 101"),
    ("post-op-bleeding", "Severe swelling on the left side of my face since this morning"),
    ("dental-trauma", "The swelling in my face keeps getting worse"),
]
BENIGN += [
    ("post-op-bleeding", "I have a little bleeding from the incision, is that normal?"),
    ("post-op-bleeding", "Should I be worried about mild swelling on day two?"),
    ("post-op-bleeding", "No fever and the swelling is down a lot"),
    ("post-op-bleeding", "The bleeding has slowed down to almost nothing"),
    ("post-op-bleeding", "I was feverish yesterday but my temperature is back to normal"),
    ("dental-trauma", "My face isn't swollen, I just have a toothache"),
    ("dental-trauma", "Slight swelling in my cheek after the extraction, is that normal?"),
    ("dental-trauma", "I can swallow without any problem"),
    ("dental-trauma", "My tooth isn't loose or anything, I just want a cleaning"),
    ("post-op-bleeding", "The swelling is minor and improving"),
    ("post-op-bleeding", "Is it normal to still be a bit swollen after a week?"),
    ("dental-trauma", "The swelling in my face has almost gone away"),
    ("post-op-bleeding", "Is bruising normal?"),
    ("post-op-bleeding", "There's some light oozing on the bandage but it's not much"),
    ("dental-trauma", "My kid's baby tooth fell out naturally, is that ok?"),
]

# A fifth fresh batch (before tuning: 15/15 urgent, 2/15 benign).
URGENT += [
    ("facelift-hematoma", "My right cheek has gotten much bigger in the last hour"),
    ("facelift-hematoma", "It's swelling up on just one side and feels firm"),
    ("post-op-bleeding", "Blood has soaked my pillowcase and the dressing"),
    ("post-op-bleeding", "My fever is climbing, it was 100 and now 102"),
    ("post-op-bleeding", "I feel hot and have the chills"),
    ("dental-trauma", "My tooth was knocked out, I have it in milk"),
    ("dental-trauma", "My lip and face are swelling really badly after the procedure"),
    ("dental-trauma", "I'm having a hard time swallowing"),
    ("facelift-hematoma", "The swelling on my neck keeps getting larger"),
    ("post-op-bleeding", "The swelling is severe and my eyes are swollen shut"),
    (
        "post-op-bleeding",
        "Hi yes so um I had the facelift and uh my face is swelling up a lot more tonight "
        "and it's really tight and painful",
    ),
    ("facelift-hematoma", "Compared to this morning the left side is way more swollen"),
    ("dental-trauma", "My face has gotten so swollen I can't see out of one eye"),
    ("post-op-bleeding", "There is fresh blood dripping and it won't quit"),
    ("post-op-bleeding", "Temperature of 101 and I'm sweating"),
]
BENIGN += [
    ("facelift-hematoma", "The swelling is the same on both sides and getting better"),
    ("facelift-hematoma", "Is it normal for one side to be slightly more swollen?"),
    ("post-op-bleeding", "I don't have a temperature"),
    ("post-op-bleeding", "The bleeding is under control now"),
    ("post-op-bleeding", "There's just a small spot of blood on the dressing, nothing more"),
    ("dental-trauma", "I have a little swelling after my filling, is that expected?"),
    ("dental-trauma", "No swelling at all, just sensitivity to cold"),
    ("dental-trauma", "I'm swallowing fine"),
    ("facelift-hematoma", "My swelling seems to be going away"),
    ("post-op-bleeding", "Is a temperature of 99 normal after surgery?"),
    ("post-op-bleeding", "The swelling looks a little less every morning"),
    ("dental-trauma", "My face was swollen but it's better now"),
    ("facelift-hematoma", "When will the swelling on my left side go down?"),
    ("post-op-bleeding", "The swelling has stabilized and I'm feeling better"),
    ("post-op-bleeding", "I'm not bleeding at all"),
]

# A sixth fresh batch (before tuning: 13/15 urgent, 2/15 benign).
URGENT += [
    ("post-op-bleeding", "I keep having to change the dressing, it's full of blood every hour"),
    ("post-op-bleeding", "My face is enormous this morning"),
    ("post-op-bleeding", "I woke up with a fever"),
    ("post-op-bleeding", "I'm burning up and my incision looks angry"),
    ("dental-trauma", "There's a big swelling on my jaw that's spreading"),
    ("dental-trauma", "My tooth came out when I fell"),
    ("dental-trauma", "My face is swollen and hot and it hurts to swallow"),
    ("facelift-hematoma", "The swelling under my jaw is rapidly getting bigger"),
    ("facelift-hematoma", "The left side is noticeably bigger than the right and it hurts"),
    ("facelift-hematoma", "I'm scared, my face is swelling more and more"),
    (
        "post-op-bleeding",
        "So I'm calling because my wife had her surgery on Thursday and tonight she's got a "
        "temperature of 101 and she's shivering",
    ),
    ("dental-trauma", "My son's permanent tooth got knocked out"),
    ("post-op-bleeding", "The bleeding will not stop"),
    ("facelift-hematoma", "It feels like the swelling is increasing by the minute"),
    ("dental-trauma", "Swelling in my face is getting worse and my eye is closing"),
]
BENIGN += [
    ("post-op-bleeding", "Is it normal to feel warm after surgery?"),
    ("post-op-bleeding", "The swelling is normal according to the nurse"),
    ("post-op-bleeding", "I have no signs of infection or fever"),
    ("post-op-bleeding", "A little bloody drainage is normal, right?"),
    ("dental-trauma", "Is some facial swelling expected after wisdom teeth removal?"),
    ("dental-trauma", "I think the swelling is going down now"),
    ("facelift-hematoma", "The swelling was worse yesterday, today it's much better"),
    ("facelift-hematoma", "One side was more swollen but it's evened out"),
    ("post-op-bleeding", "My fever is gone"),
    ("dental-trauma", "I haven't had any trouble swallowing"),
    ("post-op-bleeding", "My face is still swollen but less than before"),
    ("facelift-hematoma", "The swelling is going down on both sides"),
    ("post-op-bleeding", "I'm feeling great, no bleeding, minimal swelling"),
    ("dental-trauma", "My face looks a bit puffy, is this typical after an implant?"),
    ("facelift-hematoma", "The swelling peaked on day three and has been going down since"),
]

# A seventh fresh batch (before tuning: 14/15 urgent, 0/15 benign).
URGENT += [
    ("post-op-bleeding", "My bandage is drenched in blood"),
    ("post-op-bleeding", "I've had a fever over 101 for two days"),
    ("post-op-bleeding", "Ever since dinner my face has been swelling and it's not stopping"),
    ("facelift-hematoma", "My neck is swelling quickly on the right"),
    ("facelift-hematoma", "One cheek is swollen hard and tight, the other is normal"),
    ("dental-trauma", "Half of my face is swollen after the root canal and it's getting bigger"),
    ("dental-trauma", "I fell and my front tooth is completely out"),
    ("dental-trauma", "I literally can't swallow my saliva"),
    ("post-op-bleeding", "The incision keeps bleeding through every bandage"),
    ("facelift-hematoma", "The swelling went from a little to a lot in an hour"),
    ("post-op-bleeding", "I have a really bad fever"),
    ("dental-trauma", "My face is so swollen my eye is shut"),
    (
        "post-op-bleeding",
        LONG + "and then it started bleeding again and it just won't stop, I've gone t"
        "hrough a whole box of gauze",
    ),
    ("facelift-hematoma", "The swelling on the left keeps getting worse and it's really painful"),
    ("dental-trauma", "My jaw has swelled up a lot since this morning"),
]
BENIGN += [
    ("post-op-bleeding", "Is it ok that my face is still swollen two weeks later?"),
    ("post-op-bleeding", "The nurse said a little swelling is normal, and mine is small"),
    ("post-op-bleeding", "No bleeding today at all"),
    ("post-op-bleeding", "My temperature was 99 and now it's normal"),
    ("facelift-hematoma", "Both cheeks are equally swollen, is that expected?"),
    ("facelift-hematoma", "The swelling seems to be slowly going down"),
    ("dental-trauma", "I have a tiny bit of swelling near the gum"),
    ("dental-trauma", "My face isn't swollen anymore"),
    ("dental-trauma", "Swallowing is normal again"),
    ("post-op-bleeding", "Is it expected to have some oozing for a day or two?"),
    ("post-op-bleeding", "I had a fever after surgery but it's resolved"),
    ("facelift-hematoma", "My swelling is much less today"),
    ("dental-trauma", "Is it normal for my cheek to be a little puffy after the extraction?"),
    ("post-op-bleeding", "The drainage is clear and light"),
    ("facelift-hematoma", "Compared to last week the swelling is way down"),
]

# A fresh batch of emergencies and their look-alikes (before tuning: 12/13, 0/8).
EMERGENCY += [
    "I can't breathe properly",
    "I'm gasping for air",
    "It feels like an elephant is sitting on my chest",
    "I have a sharp pain in my chest",
    "My chest hurts and my left arm is numb",
    "He's not making sense and his face is drooping",
    "She suddenly can't move her right arm",
    "Blood is spurting from the incision",
    "I'm bleeding heavily and feel faint",
    "I'm struggling to breathe",
    "My breathing is really labored",
    "I think I'm having a stroke",
    "I'm short of breath when I lie down",
    # An airway closing is an emergency whatever protocol the caller's visit falls under.
    "I can't swallow, my throat is closing up",
    "my throat feels like it's closing after the injection",
    "her throat is swelling up and she sounds wheezy",
]
NOT_EMERGENCY += [
    "the incision in my throat area is closing up nicely",
    "I'm breathing fine",
    "No shortness of breath",
    "I don't have any chest pain",
    "My arm is a bit sore from the IV",
    "I had a little blood on the pillow",
    "I can breathe through my nose again",
    "The nurse said to call if I had chest pain",
    "What are the signs of a stroke?",
]

# An eighth fresh batch, other wording and rambling turns per demo protocol (before tuning: 30/42
# urgent caught, 5/43 benign escalated, 8/8 emergencies heard; after: 42/42, 0/43, 8/8).
RAMBLE = (
    "Okay so, um, sorry, I'm not great at this, I had the surgery with Dr. Martinez last "
    "week and my sister has been staying with me, she's been great, we've been doing the ice "
    "packs and the walks around the block like the sheet says, and "
)
URGENT += [
    (
        "post-op-bleeding",
        "There's blood running down my neck from the stitches and I can't get it to stop",
    ),
    ("post-op-bleeding", "I've been holding pressure for thirty minutes and it's still bleeding"),
    ("post-op-bleeding", "The gauze turns red as soon as I put a new one on"),
    ("post-op-bleeding", "My thermometer says 101.2"),
    ("post-op-bleeding", "I've been sweating and shaking with chills all afternoon"),
    ("post-op-bleeding", "I feel like I'm running a fever and I'm achy all over"),
    ("post-op-bleeding", "My face is incredibly swollen, I barely recognize myself"),
    (
        "post-op-bleeding",
        "Um, so, yeah, I'm the one who had the tummy tuck last week, and, uh, the incision "
        "has been bleeding since about six and it's, it's just not stopping",
    ),
    ("post-op-bleeding", "My eyelids are so swollen I can't open them"),
    ("post-op-bleeding", "The swelling is extreme"),
    ("post-op-bleeding", "I'm bleeding through my compression garment"),
    ("post-op-bleeding", "My temperature keeps going up"),
    (
        "post-op-bleeding",
        "Hi, it's Maria, I had my breast augmentation Friday, and, um, my left breast is "
        "really swollen and hard and much bigger than the right",
    ),
    (
        "post-op-bleeding",
        RAMBLE + "tonight I feel really hot and my teeth are chattering",
    ),
    ("dental-trauma", "My grandson's front tooth was knocked out when he fell off the swing"),
    ("dental-trauma", "A tooth got knocked loose and then fell out during the game"),
    ("dental-trauma", "I bit down on something and my whole tooth came out, root and all"),
    (
        "dental-trauma",
        "My face has puffed up on the right side since the extraction and it's spreading "
        "toward my eye",
    ),
    ("dental-trauma", "My cheek swelled up overnight and it's hot and hard"),
    ("dental-trauma", "I can't even swallow water without gagging"),
    ("dental-trauma", "It's so painful to swallow I can't eat or drink"),
    ("dental-trauma", "My jaw is swollen so bad I can't open my mouth"),
    (
        "dental-trauma",
        "So my son was at hockey and took a puck to the mouth, and um, one of his adult "
        "teeth is just gone, like it's out, we have it in a cup",
    ),
    ("dental-trauma", "Swallowing is really difficult since this afternoon"),
    ("dental-trauma", "My gums and cheek are swollen up like a golf ball"),
    ("facelift-hematoma", "The right side of my face is puffing up faster than I can ice it"),
    ("facelift-hematoma", "My neck looks lopsided, one side is much puffier"),
    ("facelift-hematoma", "The swelling under my left ear is getting bigger every time I look"),
    ("facelift-hematoma", "It's ballooning on the left"),
    ("facelift-hematoma", "I'd say the swelling has tripled since noon"),
    ("facelift-hematoma", "Only my left cheek is swollen and it's firm to the touch"),
    ("facelift-hematoma", "My face is swelling up really quickly since I got home"),
    (
        "facelift-hematoma",
        "Okay so I had my facelift yesterday, and my husband says the right side of my face "
        "looks way bigger than the left, and it's kind of tight and bruised, and it seems to "
        "be growing",
    ),
    ("cataract-vision", "I suddenly lost vision in my left eye"),
    ("cataract-vision", "It's like someone pulled a shade down over my eye"),
    ("cataract-vision", "My eye is in agony"),
    ("cataract-vision", "I had cataract surgery and now I can only see shadows out of that eye"),
    ("cataract-vision", "My vision got really dim all at once"),
    ("cataract-vision", "The pain in my eye is excruciating and it's red"),
    ("cataract-vision", "There's a black veil over half of what I see"),
    (
        "cataract-vision",
        "I'm seeing a lot of new flashes and floaters and part of my vision is missing",
    ),
    (
        "cataract-vision",
        "Hi, I'm calling for my dad, he had his cataract done Tuesday, and he says he woke "
        "up and can't see out of it, it's just grey",
    ),
]
BENIGN += [
    ("post-op-bleeding", "There's a little dried blood around the stitches, should I clean it?"),
    ("post-op-bleeding", "My temp is 98.6"),
    ("post-op-bleeding", "I'm not feverish at all"),
    (
        "post-op-bleeding",
        "The swelling is pretty normal I think, it's about what they said it'd be",
    ),
    ("post-op-bleeding", "A few drops of blood on the gauze, nothing since lunch"),
    ("post-op-bleeding", "Swelling has been slowly getting better every day"),
    ("post-op-bleeding", "I'm a little swollen still, when can I exercise?"),
    ("post-op-bleeding", "I have no fever, no chills, I'm just itchy"),
    (
        "post-op-bleeding",
        "Hi, so, um, I had my lipo last Monday and things are going well, just a bit of "
        "bruising and the swelling's come down, I wanted to know when I can take off the "
        "garment",
    ),
    ("post-op-bleeding", "I bled a tiny bit when I showered but it stopped right away"),
    ("post-op-bleeding", "The swelling is moderate and it's better than it was"),
    ("post-op-bleeding", "The incision looks clean and there's no fever"),
    ("post-op-bleeding", "Does the swelling usually go down after a week?"),
    (
        "post-op-bleeding",
        RAMBLE + "honestly I feel good, no fever, the swelling's not bad, I just need to move my "
        "follow-up to Thursday",
    ),
    ("dental-trauma", "My tooth is slightly chipped but not loose"),
    ("dental-trauma", "My cheek is a little puffy from the injection but it's going down"),
    ("dental-trauma", "I can swallow, it's just my jaw that's stiff"),
    ("dental-trauma", "Swallowing feels normal"),
    ("dental-trauma", "My kid lost a baby tooth, is that okay?"),
    ("dental-trauma", "My gums are slightly swollen after the deep cleaning"),
    ("dental-trauma", "No facial swelling, just some sensitivity"),
    (
        "dental-trauma",
        "Is it normal for my jaw to be sore and a little swollen after a root canal?",
    ),
    (
        "dental-trauma",
        "Hi yeah I'm calling about my filling from yesterday, it's fine, no swelling or "
        "anything, I just want to know if I can eat popcorn",
    ),
    ("facelift-hematoma", "Both sides are swollen the same amount"),
    (
        "facelift-hematoma",
        "The swelling on one side is going down faster than the other, is that normal?",
    ),
    ("facelift-hematoma", "My swelling isn't increasing, it's just still there"),
    ("facelift-hematoma", "The swelling seems to be shrinking"),
    ("facelift-hematoma", "My left side was puffier but now it matches the right"),
    ("facelift-hematoma", "It's puffy but not getting any bigger"),
    ("facelift-hematoma", "Should I expect swelling on both sides for a while?"),
    ("cataract-vision", "My vision is a little cloudy but it's clearing up"),
    ("cataract-vision", "I can see better than before the surgery"),
    ("cataract-vision", "My eye feels scratchy, like there's an eyelash in it"),
    ("cataract-vision", "No pain, my vision just seems a bit dim at night"),
    ("cataract-vision", "My eye is mildly sore when I blink"),
    ("cataract-vision", "I'm seeing halos around lights at night, is that normal?"),
    ("cataract-vision", "The blurriness is slowly going away"),
    ("cataract-vision", "My vision isn't blurry anymore"),
    ("any", "I'm breathing normally, I just feel a bit tired after the surgery"),
    ("any", "My chest is a little bruised from the liposuction but it doesn't hurt much"),
    ("any", "No chest pain or shortness of breath, just nausea"),
    ("any", "I can breathe okay through my mouth, my nose is packed"),
    ("any", "The compression garment feels a little tight around my chest"),
]
EMERGENCY += [
    "I can hardly breathe",
    "My chest feels like it's being squeezed",
    "There's a lot of blood pouring from my mouth after the extraction",
    "His words are slurred and one side of his face is drooping",
    "I'm wheezing and can't get enough air",
    "There's pain in my chest going down my arm",
    "Blood is gushing from the incision",
    "She can't lift her left arm and her speech is garbled",
]

# A ninth, written after tuning on the eighth (before tuning: 25/30 urgent, 3/30 benign, 5/6
# emergencies; after: 30/30, 0/30, 6/6).
URGENT += [
    ("post-op-bleeding", "Blood keeps seeping out from under the tape"),
    ("post-op-bleeding", "My shirt is covered in blood, it's coming from the incision"),
    ("post-op-bleeding", "I've gone through four pads in an hour"),
    ("post-op-bleeding", "I'm freezing and then sweating, I think I've got a temperature"),
    ("post-op-bleeding", "Thermometer reads 38.6"),
    ("post-op-bleeding", "I've been running a fever since I got home"),
    ("post-op-bleeding", "My whole face is swollen like a pumpkin"),
    ("post-op-bleeding", "The swelling around my eyes is so bad they're almost closed"),
    (
        "post-op-bleeding",
        "so yeah um it's my mom, she had the eyelid surgery, and uh she's bleeding from the "
        "corner of her eye and it just keeps going",
    ),
    ("post-op-bleeding", "My nose won't stop bleeding after the rhinoplasty"),
    ("dental-trauma", "A tooth got knocked right out of my mouth"),
    ("dental-trauma", "My daughter fell and her tooth popped out"),
    ("dental-trauma", "My face is swelling up on the side where you pulled the tooth"),
    ("dental-trauma", "I can't get anything down, it hurts too much to swallow"),
    ("dental-trauma", "I'm having difficulty swallowing and my face is puffy"),
    ("dental-trauma", "Half my face is swollen and the swelling's going into my neck"),
    (
        "dental-trauma",
        "um hi, so my husband got elbowed playing basketball and his front tooth is, it's "
        "out, it came out completely",
    ),
    ("facelift-hematoma", "The left side of my face is swelling way faster than the right"),
    ("facelift-hematoma", "My jaw on one side keeps getting puffier and harder"),
    ("facelift-hematoma", "The swelling's been increasing all evening"),
    ("facelift-hematoma", "Just one cheek is blowing up"),
    ("facelift-hematoma", "I look really uneven, one side is much bigger"),
    ("facelift-hematoma", "The swelling is getting worse quickly"),
    ("cataract-vision", "My vision went completely black in the operated eye"),
    ("cataract-vision", "I can barely see out of my right eye all of a sudden"),
    ("cataract-vision", "It feels like there's a dark cloud covering my eye"),
    ("cataract-vision", "My eye pain is a ten out of ten"),
    ("cataract-vision", "The pain in my eye is getting worse and worse"),
    ("cataract-vision", "Everything in that eye suddenly went dark"),
    (
        "cataract-vision",
        "Sorry to call so late, my eye's been aching more and more since the surgery and now "
        "it's really awful",
    ),
]
BENIGN += [
    ("post-op-bleeding", "There's a bit of old blood on the dressing, that's fine right?"),
    ("post-op-bleeding", "My temperature is 99.1, should I worry?"),
    ("post-op-bleeding", "No bleeding and no fever, the swelling's going down"),
    ("post-op-bleeding", "The swelling is still there but it's improving"),
    ("post-op-bleeding", "I had some light bleeding yesterday, none today"),
    ("post-op-bleeding", "I feel fine, when do the stitches come out?"),
    ("post-op-bleeding", "Is it normal to have a slight fever the day after?"),
    ("post-op-bleeding", "My face is a bit swollen but nothing crazy"),
    ("post-op-bleeding", "The bruising is yellow now and the swelling is almost gone"),
    (
        "post-op-bleeding",
        "hi um so everything's fine really, the swelling's a little better each day, I just "
        "can't remember if I'm supposed to keep the garment on at night",
    ),
    ("dental-trauma", "My tooth feels a bit wobbly but it's still in"),
    ("dental-trauma", "The numbness is wearing off and my cheek is barely swollen"),
    ("dental-trauma", "I can swallow but my throat is a little scratchy"),
    ("dental-trauma", "There's no swelling, I just lost a filling"),
    ("dental-trauma", "My face isn't swelling, just my gum is a little sore"),
    ("dental-trauma", "The swelling after the extraction has gone down"),
    ("dental-trauma", "Is mild swelling expected after an implant?"),
    ("facelift-hematoma", "The swelling looks the same on both sides"),
    ("facelift-hematoma", "My swelling's slowly going down, is it ok to sleep on my side?"),
    ("facelift-hematoma", "One side was a little bigger yesterday but today they look even"),
    ("facelift-hematoma", "The swelling is not increasing"),
    ("facelift-hematoma", "There's mild swelling under my chin that's getting better"),
    ("facelift-hematoma", "How long until the swelling is gone completely?"),
    ("cataract-vision", "My vision is clearer every day"),
    ("cataract-vision", "My eye is slightly red but it doesn't hurt"),
    ("cataract-vision", "No eye pain at all, I just want to know about the drops"),
    ("cataract-vision", "Things are a little blurry up close, is that normal?"),
    ("cataract-vision", "My vision is fine, I'm calling about my glasses"),
    ("any", "No trouble breathing, I'm just congested"),
    ("any", "My chest feels fine, it's my back that's sore"),
]
EMERGENCY += [
    "I can't get a breath in",
    "There's a heavy pressure in my chest",
    "She's bleeding a lot and it's pouring out",
    "His face is drooping and he can't talk properly",
    "I'm really struggling to breathe right now",
    "I think I'm having a heart attack",
]

# A tenth, written after tuning on the ninth (before tuning: 23/26 urgent, 1/25 benign, 5/5
# emergencies; after: 26/26, 0/25, 5/5).
RAMBLE_2 = (
    "yeah hi so I'm calling because, um, well I had my procedure on the first and I've been "
    "doing okay mostly, I've been resting and drinking water and all that, but "
)
URGENT += [
    (
        "post-op-bleeding",
        RAMBLE_2 + "since about an hour ago there's blood dripping out of my ear incision and it's "
        "not slowing",
    ),
    ("post-op-bleeding", "The bleeding just keeps coming back every time I take the pressure off"),
    ("post-op-bleeding", "I'm bleding a lot from the drain site"),
    ("post-op-bleeding", "I have a feaver and I feel terrible"),
    ("post-op-bleeding", "I'm having hot flashes and chills and my temp is 100.9"),
    (
        "post-op-bleeding",
        RAMBLE_2 + "I woke up drenched in sweat and shivering",
    ),
    ("post-op-bleeding", "My belly is hugely swollen and rock hard after the tummy tuck"),
    ("post-op-bleeding", "The swelling is way way worse than what they told me to expect"),
    ("post-op-bleeding", "My lips are swollen to like three times their size"),
    ("dental-trauma", "My tooth broke off at the gum line when I fell"),
    (
        "dental-trauma",
        "we were at the park and she hit the slide and her front tooth came clean out",
    ),
    (
        "dental-trauma",
        RAMBLE_2
        + "my face started swelling on the left after the extraction and now my eye is puffy "
        "too",
    ),
    ("dental-trauma", "I can't swallow properly and my neck is swollen"),
    ("dental-trauma", "It's hard to swallow and my tongue feels swollen"),
    ("dental-trauma", "my whole jaw is swolen and it really hurts"),
    ("facelift-hematoma", "One side of my neck is swelling, the other side is fine"),
    ("facelift-hematoma", "The swelling is coming up fast on the right side"),
    ("facelift-hematoma", "My face is swelling more and more by the minute"),
    ("facelift-hematoma", "It's way more swollen on my left than my right and it's tense"),
    (
        "facelift-hematoma",
        RAMBLE_2 + "in the last hour the left cheek has gotten huge and it's purple",
    ),
    ("cataract-vision", "I've lost the vision in my eye"),
    ("cataract-vision", "My vision is going dark from the edges"),
    ("cataract-vision", "The eye they operated on hurts really bad"),
    ("cataract-vision", "Suddenly I'm seeing a big shadow in the corner of my eye"),
    ("cataract-vision", "The pain in my eye is so severe I'm nauseous"),
    (
        "cataract-vision",
        RAMBLE_2
        + "this morning my vision in the left eye suddenly went all blurry and it's painful",
    ),
]
BENIGN += [
    ("post-op-bleeding", "There's a little pink on the gauze, is that normal?"),
    ("post-op-bleeding", "Not bleeding, just a bit of clear fluid"),
    ("post-op-bleeding", "My temp this morning was 98.9"),
    ("post-op-bleeding", "I haven't had any fever"),
    ("post-op-bleeding", "The swelling is getting better slowly"),
    (
        "post-op-bleeding",
        RAMBLE_2
        + "the swelling is going down and I haven't needed the pain pills since yesterday, "
        "so can I drive?",
    ),
    ("post-op-bleeding", "I'm a bit swollen, is that expected?"),
    ("post-op-bleeding", "The bleeding stopped an hour ago"),
    ("dental-trauma", "I chipped a tooth but it's not bad"),
    ("dental-trauma", "There's a little swelling near the extraction site"),
    ("dental-trauma", "Swallowing is fine now"),
    ("dental-trauma", "My face was a bit puffy yesterday but it's gone down"),
    ("dental-trauma", "No swelling, no fever, I just need to reschedule my cleaning"),
    ("dental-trauma", "Is it normal to feel a little sore when I swallow after wisdom teeth?"),
    ("facelift-hematoma", "The swelling is even on both sides"),
    ("facelift-hematoma", "The swelling is slowly decreasing"),
    ("facelift-hematoma", "Neither side is more swollen than the other"),
    (
        "facelift-hematoma",
        RAMBLE_2
        + "it all looks symmetrical and the swelling's settling down, I just have a question "
        "about the bills",
    ),
    ("facelift-hematoma", "It's a little puffy on the right, but it's getting smaller"),
    ("cataract-vision", "My vision is much better"),
    ("cataract-vision", "I have a little discomfort in the eye, is that normal?"),
    ("cataract-vision", "My eye doesn't hurt, it's just watery"),
    ("cataract-vision", "The blurry vision has cleared up"),
    ("cataract-vision", "It's a little bit hazy but improving"),
    ("any", "I'm not short of breath"),
]
EMERGENCY += [
    "My wife can't breathe and she's turning blue",
    "There's a crushing feeling in my chest",
    "The blood is just pouring out",
    "I'm having trouble breathing",
    "My dad's speech is slurred and his arm is weak",
]

# An eleventh, written after tuning on the tenth (before tuning: 25/27 urgent, 1/25 benign, 5/5
# emergencies; after: 27/27, 0/25, 5/5).
RAMBLE_3 = (
    "hi, sorry to bother you so late, this is about my mom, she had her operation on Monday "
    "and we've been following all the instructions, the ice, the pills, everything, and "
)
URGENT += [
    ("post-op-bleeding", "My bandages keep filling up with blood"),
    ("post-op-bleeding", "There's a steady trickle of blood from the incision that won't quit"),
    (
        "post-op-bleeding",
        RAMBLE_3 + "now she's burning hot and shaking under three blankets",
    ),
    ("post-op-bleeding", "My temperature went up to 102.4 tonight"),
    ("post-op-bleeding", "I've been feeling feverish and sweaty since this afternoon"),
    ("post-op-bleeding", "The swelling is massive, my eyes are nearly shut"),
    ("post-op-bleeding", "I'm really really swollen, way more than they said"),
    (
        "post-op-bleeding",
        RAMBLE_3 + "the bleeding started again an hour ago and we can't get it to stop",
    ),
    ("post-op-bleeding", "blood keeps soaking the gauze"),
    ("dental-trauma", "My son's adult tooth got knocked out at hockey, we have it in milk"),
    ("dental-trauma", "I fell on my face and lost a front tooth"),
    ("dental-trauma", "My cheek is blowing up like a balloon since the extraction"),
    ("dental-trauma", "My face is getting really puffy and hot on the side of the bad tooth"),
    ("dental-trauma", "I can't get any food or water down, it's too painful to swallow"),
    ("dental-trauma", "I'm struggling to swallow and my jaw is swollen"),
    (
        "dental-trauma",
        RAMBLE_3 + "her jaw is swelling up and now she can barely swallow",
    ),
    ("facelift-hematoma", "The left side of my face has suddenly gotten very swollen"),
    ("facelift-hematoma", "My swelling is increasing fast and it feels tight"),
    ("facelift-hematoma", "Only the right side is puffing up and it's really firm"),
    ("facelift-hematoma", "My neck is getting bigger and bigger on one side"),
    (
        "facelift-hematoma",
        RAMBLE_3 + "in the last half hour her right cheek ballooned up and it's hard as a rock",
    ),
    ("cataract-vision", "I suddenly can't see anything from my left eye"),
    ("cataract-vision", "There's like a gray curtain over the top of my vision"),
    ("cataract-vision", "My eye hurts terribly and I feel sick"),
    ("cataract-vision", "My vision just went dark in the eye they did"),
    ("cataract-vision", "It's like looking through a dark veil"),
    (
        "cataract-vision",
        RAMBLE_3 + "this evening she said everything in her right eye went black and it's really "
        "painful",
    ),
]
BENIGN += [
    ("post-op-bleeding", "A couple of spots of blood on the pillow this morning, is that ok?"),
    ("post-op-bleeding", "My temperature is 99.0 and I feel fine"),
    ("post-op-bleeding", "I had a slight temperature yesterday but it's normal now"),
    ("post-op-bleeding", "The swelling is less every day"),
    ("post-op-bleeding", "I'm only a little swollen, can I go back to work?"),
    ("post-op-bleeding", "There's no bleeding, just some bruising on my neck"),
    (
        "post-op-bleeding",
        RAMBLE_3
        + "she's doing great, the swelling is going down and there's no fever, we just need "
        "to change the follow-up",
    ),
    ("post-op-bleeding", "The bleeding stopped as soon as I pressed on it"),
    ("dental-trauma", "My child's baby tooth came out on its own"),
    ("dental-trauma", "My gums are a bit swollen after the cleaning"),
    ("dental-trauma", "I can swallow okay, my throat is just a little sore"),
    ("dental-trauma", "The swelling from the extraction is nearly gone"),
    ("dental-trauma", "There's no swelling, I just have a question about my bill"),
    ("facelift-hematoma", "Both sides look the same and the swelling is going down"),
    ("facelift-hematoma", "My swelling has been decreasing steadily"),
    ("facelift-hematoma", "The swelling isn't getting any worse"),
    ("facelift-hematoma", "One side was a bit more swollen but it's caught up now"),
    ("facelift-hematoma", "Is a little swelling on one side normal at this stage?"),
    ("cataract-vision", "My vision is getting clearer every day"),
    ("cataract-vision", "My eye feels a little gritty, is that normal?"),
    ("cataract-vision", "No pain at all, I just want to ask about driving"),
    ("cataract-vision", "The blurriness is almost gone"),
    ("cataract-vision", "My eye is slightly sore but improving"),
    ("any", "No trouble breathing at all"),
    ("any", "My chest is fine, no pain"),
]
EMERGENCY += [
    "I can't catch my breath at all",
    "My chest is being crushed",
    "There's blood pouring out of the wound",
    "Her speech is slurred and her face is drooping on one side",
    "He can't breathe, he's gasping",
]

# A twelfth, written after tuning on the eleventh (before tuning: 18/20 urgent, 0/20 benign, 4/4
# emergencies; after: 20/20, 0/20, 4/4).
URGENT += [
    (
        "post-op-bleeding",
        "Is it bad that the incision is still bleeding after two hours of pressure?",
    ),
    ("post-op-bleeding", "I measured 38.5 degrees just now"),
    ("post-op-bleeding", "My husband is running a temperature and has the shakes"),
    ("post-op-bleeding", "I think I might have a hematoma, my face is really swollen and tight"),
    ("post-op-bleeding", "blood is seeping through the stitches nonstop"),
    ("post-op-bleeding", "The dressing is completely saturated with blood"),
    ("post-op-bleeding", "uh yeah my my face is like super swollen right now"),
    ("dental-trauma", "My daughter knocked out her front tooth on the pool edge"),
    ("dental-trauma", "The tooth came out whole when he got hit"),
    ("dental-trauma", "My jaw and cheek are swollen and it's spreading down my neck"),
    ("dental-trauma", "Swallowing has become almost impossible"),
    ("dental-trauma", "my face swelled up overnight after the root canal"),
    ("facelift-hematoma", "My right cheek is way bigger than my left and getting worse"),
    ("facelift-hematoma", "The swelling has been getting rapidly worse since dinner"),
    ("facelift-hematoma", "It's suddenly swelling a lot under my left ear"),
    ("facelift-hematoma", "one side of my face is twice as swollen"),
    ("cataract-vision", "I've lost most of the vision in my right eye since this morning"),
    ("cataract-vision", "My eye is throbbing with pain and it's really red"),
    ("cataract-vision", "I see a dark shadow moving across my vision"),
    ("cataract-vision", "Everything went blurry all of a sudden and my eye is killing me"),
]
BENIGN += [
    ("post-op-bleeding", "My temperature was 37.2 this morning"),
    ("post-op-bleeding", "I'm not running a fever"),
    ("post-op-bleeding", "There was a tiny bit of bleeding but it's stopped"),
    ("post-op-bleeding", "The swelling is mild and getting better"),
    ("post-op-bleeding", "Is some swelling expected after a tummy tuck?"),
    ("post-op-bleeding", "I don't have any bleeding or fever, just soreness"),
    ("dental-trauma", "I lost a filling, no pain, no swelling"),
    ("dental-trauma", "My face isn't swollen at all"),
    ("dental-trauma", "I can swallow normally"),
    ("dental-trauma", "The swelling in my cheek went down overnight"),
    ("facelift-hematoma", "The swelling is equal on both sides"),
    ("facelift-hematoma", "My swelling is slowly going away"),
    ("facelift-hematoma", "It was swollen on one side but that's resolved"),
    ("facelift-hematoma", "How long does the swelling usually last after a facelift?"),
    ("cataract-vision", "My vision is a bit blurry but better than yesterday"),
    ("cataract-vision", "My eye doesn't hurt at all"),
    ("cataract-vision", "I'm seeing much better now"),
    ("cataract-vision", "There's a little irritation, is that normal?"),
    ("any", "I'm breathing okay"),
    ("any", "No chest pain whatsoever"),
]
EMERGENCY += [
    "I can't breathe properly and my lips are blue",
    "My chest feels really heavy and tight",
    "It's bleeding heavily and won't stop",
    "She suddenly can't talk and her arm is weak",
]
