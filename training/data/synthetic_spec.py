"""The content of the synthetic sticker world: how each intention looks and how people say it.

Pure data. `synthetic.py` draws stickers and writes conversations from these tables. Visual
features are shared between intentions on purpose (many faces smile, many hands are open), so
that an intention is a combination of features, not one giveaway mark.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Look:
    """The visual signature of one intention."""

    eyes: str
    brows: str
    mouth: str
    extra: str
    gesture: str
    posture: str
    caption: str


LOOKS: dict[str, Look] = {
    "admiration": Look("stars", "raised", "open_smile", "none", "clap", "lean_forward", "WOW"),
    "amusement": Look("happy", "flat", "big_grin", "tear", "point", "bent", "LOL"),
    "anger": Look("dots", "angry", "teeth", "steam", "fist", "stomp", "GRR"),
    "annoyance": Look("half", "angry", "flat", "none", "palm_out", "arms_crossed", "UGH"),
    "approval": Look("dots", "flat", "smile", "none", "thumbs_up", "standing", "OK"),
    "caring": Look("happy", "sad", "smile", "blush", "heart_hands", "hug", "HUGS"),
    "confusion": Look("uneven", "one_raised", "wavy", "none", "none", "tilt", "HUH?"),
    "curiosity": Look("wide", "raised", "small_o", "none", "point", "lean_forward", "HMM"),
    "desire": Look("hearts", "raised", "tongue", "none", "grab", "reach", "WANT"),
    "disappointment": Look("half", "sad", "frown", "none", "thumbs_down", "slumped", "MEH"),
    "disapproval": Look("dots", "angry", "frown", "none", "cross", "arms_crossed", "NOPE"),
    "disgust": Look("squint", "angry", "tongue", "none", "palm_out", "lean_back", "EW"),
    "embarrassment": Look("closed", "sad", "wavy", "blush", "cover", "shrink", "OOPS"),
    "excitement": Look("stars", "raised", "big_grin", "none", "raise_both", "jumping", "YAY"),
    "fear": Look("wide", "sad", "open_o", "sweat", "palm_out", "shrink", "EEK"),
    "gratitude": Look("happy", "flat", "smile", "blush", "pray", "bow", "THANKS"),
    "grief": Look("tears", "sad", "cry", "none", "cover", "kneel", "WAAH"),
    "joy": Look("happy", "raised", "big_grin", "blush", "wave", "dance", "HAPPY"),
    "love": Look("hearts", "raised", "smile", "blush", "heart_hands", "hug", "LOVE"),
    "nervousness": Look("wide", "sad", "wavy", "sweat", "fidget", "shrink", "ERM"),
    "optimism": Look("dots", "raised", "smile", "none", "fist", "arms_up", "GO!"),
    "pride": Look("closed", "raised", "smirk", "none", "thumbs_up", "hands_on_hips", "NAILED IT"),
    "realization": Look("wide", "raised", "small_o", "none", "finger_up", "standing", "AHA"),
    "relief": Look("closed", "flat", "smile", "sweat", "wave", "lean_back", "PHEW"),
    "remorse": Look("half", "sad", "frown", "sweat", "pray", "bow", "SORRY"),
    "sadness": Look("tears", "sad", "frown", "none", "none", "slumped", "SAD"),
    "surprise": Look("wide", "raised", "open_o", "none", "raise_both", "jumping", "WHOA"),
    "neutral": Look("dots", "flat", "flat", "none", "none", "standing", "OK."),
}

#: Wording for attribute descriptions; several per feature so descriptions vary.
FEATURE_WORDS: dict[str, tuple[str, ...]] = {
    "eyes:stars": ("starry eyes", "eyes shining like stars"),
    "eyes:happy": ("eyes closed in happy arcs", "smiling curved eyes"),
    "eyes:dots": ("small dot eyes", "plain round eyes"),
    "eyes:half": ("half-closed eyes", "droopy lidded eyes"),
    "eyes:uneven": ("one eye bigger than the other", "mismatched eyes"),
    "eyes:wide": ("wide open eyes", "big staring eyes"),
    "eyes:hearts": ("heart-shaped eyes", "eyes turned into hearts"),
    "eyes:squint": ("squeezed shut eyes", "tightly squinting eyes"),
    "eyes:closed": ("calmly closed eyes", "eyes shut"),
    "eyes:tears": ("eyes full of tears", "teary eyes"),
    "brows:raised": ("raised eyebrows", "lifted brows"),
    "brows:flat": ("relaxed eyebrows", "level brows"),
    "brows:angry": ("furrowed eyebrows", "brows pulled down"),
    "brows:sad": ("worried eyebrows", "brows tilted up in the middle"),
    "brows:one_raised": ("one eyebrow raised", "a single lifted brow"),
    "mouth:open_smile": ("an open-mouthed smile", "a smiling open mouth"),
    "mouth:big_grin": ("a huge grin", "a wide laughing mouth"),
    "mouth:teeth": ("clenched teeth", "bared gritted teeth"),
    "mouth:flat": ("a straight flat mouth", "an expressionless mouth"),
    "mouth:smile": ("a gentle smile", "a soft smile"),
    "mouth:wavy": ("a wobbly wavy mouth", "an uneasy zigzag mouth"),
    "mouth:small_o": ("a small round mouth", "lips in a little o"),
    "mouth:tongue": ("tongue sticking out", "a tongue poking out"),
    "mouth:frown": ("a frown", "a downturned mouth"),
    "mouth:open_o": ("a gaping open mouth", "a mouth wide open in shock"),
    "mouth:cry": ("a wailing open mouth", "a mouth open in a sob"),
    "mouth:smirk": ("a confident smirk", "a lopsided grin"),
    "extra:tear": ("a tear of laughter", "a little tear on the cheek"),
    "extra:steam": ("steam puffing from the head", "fuming steam"),
    "extra:blush": ("rosy blushing cheeks", "pink cheeks"),
    "extra:sweat": ("a drop of sweat", "a sweat bead on the forehead"),
    "gesture:clap": ("clapping hands", "hands clapping"),
    "gesture:point": ("pointing finger", "a finger pointing forward"),
    "gesture:fist": ("a clenched fist", "a raised fist"),
    "gesture:palm_out": ("palm held out to stop", "a hand raised palm out"),
    "gesture:thumbs_up": ("thumbs up", "a thumb pointing up"),
    "gesture:heart_hands": ("hands making a heart", "a heart shape made with fingers"),
    "gesture:grab": ("grabbing hand", "fingers reaching to grab"),
    "gesture:thumbs_down": ("thumbs down", "a thumb pointing down"),
    "gesture:cross": ("arms crossed in an X", "an X sign with the hands"),
    "gesture:cover": ("hands covering the face", "face hidden behind hands"),
    "gesture:raise_both": ("both hands thrown up", "two hands raised high"),
    "gesture:pray": ("palms pressed together", "hands together in thanks"),
    "gesture:wave": ("a waving hand", "a hand waving hello"),
    "gesture:fidget": ("fidgeting fingers", "fingers nervously tapping together"),
    "gesture:finger_up": ("index finger raised", "one finger pointing up"),
    "posture:lean_forward": ("leaning forward", "bending in eagerly"),
    "posture:bent": ("doubled over", "bent over laughing"),
    "posture:stomp": ("stomping feet", "stamping on the ground"),
    "posture:arms_crossed": ("arms folded", "standing with crossed arms"),
    "posture:standing": ("standing upright", "standing still"),
    "posture:hug": ("arms open for a hug", "hugging pose"),
    "posture:tilt": ("head and body tilted", "leaning sideways"),
    "posture:reach": ("reaching out", "stretching toward something"),
    "posture:slumped": ("slumped shoulders", "hunched and drooping"),
    "posture:lean_back": ("leaning back", "pulling away backwards"),
    "posture:shrink": ("shrinking down small", "cowering"),
    "posture:jumping": ("jumping in the air", "leaping up"),
    "posture:bow": ("bowing", "a deep bow"),
    "posture:kneel": ("kneeling on the ground", "collapsed on the knees"),
    "posture:dance": ("dancing", "a happy little dance"),
    "posture:arms_up": ("arms raised in cheer", "cheering with arms up"),
    "posture:hands_on_hips": ("hands on hips", "a proud stance"),
}

#: Character kinds a sticker can show; conversations sometimes mention one.
SPECIES: dict[str, tuple[str, str]] = {
    "cat": ("cat", "猫"),
    "bear": ("bear", "熊"),
    "bunny": ("bunny", "兔子"),
    "frog": ("frog", "青蛙"),
    "robot": ("robot", "机器人"),
}

#: How a speaker expresses each intention, in English and Chinese (several wordings each).
EXPRESSIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "admiration": (("that is seriously impressive", "you are so talented", "honestly I look up to you for that", "what a masterpiece"),
                   ("太厉害了吧", "你真的很有才华", "我真佩服你", "这简直是杰作")),
    "amusement": (("hahaha that cracked me up", "I can't stop laughing", "that's hilarious", "lmao you're killing me"),
                  ("哈哈哈笑死我了", "我笑得停不下来", "太搞笑了", "你真逗")),
    "anger": (("I am absolutely furious", "this makes my blood boil", "I'm so mad right now", "how dare they do that"),
              ("我气死了", "这让我火冒三丈", "我现在非常生气", "他们怎么敢这样")),
    "annoyance": (("ugh, this again", "that's getting on my nerves", "so irritating honestly", "can you stop already"),
                  ("烦死了又来了", "这真让人心烦", "好讨厌啊", "你能不能别这样了")),
    "approval": (("sounds good to me", "yes, I agree with that", "that works, go ahead", "fair point, I'm on board"),
                 ("我觉得可以", "同意", "行，就这么办", "说得对，我支持")),
    "caring": (("take care of yourself, okay", "I'm here if you need me", "are you feeling alright", "get some rest, you deserve it"),
               ("照顾好自己哦", "有需要随时找我", "你还好吗", "好好休息一下")),
    "confusion": (("wait, what do you mean", "I'm totally lost", "that makes no sense to me", "huh? I don't get it"),
                  ("等等，你什么意思", "我完全糊涂了", "这我看不懂", "啊？没明白")),
    "curiosity": (("ooh tell me more", "how did that happen", "I wonder what's inside", "what happened next"),
                  ("快跟我说说", "这是怎么回事", "我好奇里面有什么", "后来呢")),
    "desire": (("I want one so badly", "I wish I had that", "give me that right now", "I'm craving it so much"),
               ("我好想要一个", "真希望我也有", "马上给我", "我太馋了")),
    "disappointment": (("that's a letdown", "I expected more honestly", "well, that didn't work out", "such a shame it ended like that"),
                       ("太让人失望了", "我本来期待更多", "唉，没成", "这样结束真可惜")),
    "disapproval": (("no, that's not okay", "I don't think that's right", "bad idea, don't do it", "I can't support that"),
                    ("不行，这样不对", "我觉得这不合适", "馊主意，别这么做", "我不赞成")),
    "disgust": (("eww that's gross", "that is revolting", "yuck, I feel sick", "that's nasty"),
                ("咦好恶心", "太令人反感了", "呕，我想吐", "真脏")),
    "embarrassment": (("oh no, that's so awkward", "I want to hide forever", "how embarrassing", "I can't believe I did that in public"),
                      ("天哪太尴尬了", "我想找个地缝钻进去", "好丢人啊", "我居然当众做了这种事")),
    "excitement": (("I can't wait!!", "this is going to be epic", "so pumped right now", "let's gooo"),
                   ("我等不及了", "这肯定超精彩", "我现在超激动", "冲啊")),
    "fear": (("I'm so scared", "that terrifies me", "I'm afraid to go in there", "this is creepy"),
             ("我好害怕", "这太吓人了", "我不敢进去", "好恐怖")),
    "gratitude": (("thank you so much", "I really appreciate it", "thanks a ton for helping", "you saved me, thanks"),
                  ("太感谢你了", "真的很感激", "多谢帮忙", "你救了我，谢谢")),
    "grief": (("I miss her so much", "I can't believe he's gone", "the funeral was today", "my heart is broken, we lost him"),
              ("我好想她", "不敢相信他走了", "今天是葬礼", "我心碎了，他走了")),
    "joy": (("I'm so happy today", "this made my day", "everything is wonderful", "feeling great"),
            ("我今天好开心", "今天太美好了", "一切都很棒", "心情超好")),
    "love": (("I love you so much", "you mean the world to me", "I adore this", "love it with all my heart"),
             ("我好爱你", "你是我的一切", "我太喜欢这个了", "全心全意爱它")),
    "nervousness": (("I'm so nervous about tomorrow", "my hands are shaking", "what if it goes wrong", "I'm anxious about the interview"),
                    ("我对明天好紧张", "我手都在抖", "万一搞砸了怎么办", "面试让我很焦虑")),
    "optimism": (("it'll all work out", "tomorrow will be better", "I believe we can do it", "stay positive, we've got this"),
                 ("一切都会好的", "明天会更好", "我相信我们能做到", "保持乐观，我们可以")),
    "pride": (("I finally did it myself", "look what I achieved", "I'm proud of how it turned out", "nailed it on the first try"),
              ("我终于自己做到了", "看我的成就", "我为这个结果骄傲", "一次就搞定")),
    "realization": (("oh, now I get it", "wait, that's why", "it just clicked for me", "oh I see what happened"),
                    ("哦，我懂了", "原来是这样", "我突然明白了", "啊我知道怎么回事了")),
    "relief": (("phew, that was close", "thank goodness it's over", "what a relief", "finally I can relax"),
               ("呼，好险", "谢天谢地终于结束了", "总算松了口气", "终于可以放松了")),
    "remorse": (("I'm really sorry", "I shouldn't have said that", "it was my fault, forgive me", "I regret doing that"),
                ("真的对不起", "我不该那么说", "是我的错，原谅我", "我很后悔")),
    "sadness": (("I feel so down", "today was really hard", "I'm sad and tired", "nothing feels right lately"),
                ("我好难过", "今天真的很难熬", "我又伤心又累", "最近什么都不顺")),
    "surprise": (("no way, really?!", "I did not see that coming", "whoa, seriously?", "that's unexpected"),
                 ("不会吧，真的吗", "完全没想到", "哇，真的假的", "太意外了")),
    "neutral": (("ok", "I'll be there at five", "sure, noted", "let me check the schedule"),
                ("好的", "我五点到", "收到", "我查一下日程")),
}

#: Small talk with no particular intention, to pad conversations.
SMALL_TALK: tuple[tuple[str, ...], tuple[str, ...]] = (
    ("did you see the game last night", "I'm making pasta for dinner", "the bus was late again",
     "what are you up to", "it's raining here", "my phone battery is dying", "are we still meeting on friday",
     "I just got back from work", "the new cafe opened downtown", "I have a meeting in ten minutes"),
    ("你看昨晚的比赛了吗", "我晚饭做意面", "公交又晚点了", "你在干嘛", "这边下雨了", "我手机快没电了",
     "我们周五还见面吗", "我刚下班", "市中心新开了一家咖啡店", "我十分钟后有个会"),
)

#: Mentions of a character kind, the cue that picks a sticker within an intention.
SPECIES_MENTIONS: tuple[tuple[str, ...], tuple[str, ...]] = (
    ("send me the {x} one", "my {x} sticker says it all", "you know my favourite is the {x}"),
    ("给我发那个{x}的", "我的{x}表情包说明一切", "你知道我最喜欢{x}"),
)

#: Templates that wrap an expression, for varied wording.
WRAPS: tuple[tuple[str, ...], tuple[str, ...]] = (
    ("{e}", "{e}!", "honestly, {e}", "{e}...", "omg {e}", "{e}, for real", "well, {e}"),
    ("{e}", "{e}！", "说真的，{e}", "{e}……", "天啊，{e}", "{e}，真的", "嗯，{e}"),
)

#: Commonsense knowledge templates (ATOMIC-style) per intention, English.
KNOWLEDGE: dict[str, str] = {
    "admiration": "impressed", "amusement": "amused", "anger": "angry", "annoyance": "irritated",
    "approval": "agreeable", "caring": "caring", "confusion": "confused", "curiosity": "curious",
    "desire": "eager to have it", "disappointment": "let down", "disapproval": "disapproving",
    "disgust": "grossed out", "embarrassment": "embarrassed", "excitement": "excited", "fear": "afraid",
    "gratitude": "thankful", "grief": "grieving", "joy": "happy", "love": "loving", "nervousness": "anxious",
    "optimism": "hopeful", "pride": "proud", "realization": "enlightened", "relief": "relieved",
    "remorse": "guilty", "sadness": "sad", "surprise": "surprised", "neutral": "indifferent",
}
