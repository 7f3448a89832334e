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
    ("dental-trauma", "I can't swallow, my throat is closing up"),
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
]
NOT_EMERGENCY += [
    "I'm breathing fine",
    "No shortness of breath",
    "I don't have any chest pain",
    "My arm is a bit sore from the IV",
    "I had a little blood on the pillow",
    "I can breathe through my nose again",
    "The nurse said to call if I had chest pain",
    "What are the signs of a stroke?",
]
