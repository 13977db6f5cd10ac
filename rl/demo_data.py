"""Write the demo dataset: synthetic Pika conversations (Vietnamese robot, child, English fast response).
Long because: most of it is the data itself (per-intent lesson words, child replies and fast
responses); the generator is under 100 lines.

Each conversation is 1-3 exchanges; each exchange is one record whose `previous_conversation` extends the
previous record's (robot turn = last fast response + main answer, then the child's new reply), as in the
user's data. The five intents of Pika's guidelines decide the child's reply and the fast response:
positive (right answer), negative (wrong answer, or the Vietnamese word), neutral (chit-chat),
fallback (off-topic or unclear), silence (empty child turn). Fast responses are clean English, 1-6 words,
several per intent, some naming the English word. Deterministic given the seed.

Run:  python -m rl.demo_data [PATH] [--n 2400] [--seed 0]     (default PATH: data/demo/pika_demo.jsonl)
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from common.atomic_write import write_jsonl_atomic

DEFAULT_PATH = Path("data/demo/pika_demo.jsonl")

SYSTEM_PROMPT = (
    "You are Pika, a friendly robot teaching English to Vietnamese children. Give a fast response to "
    "the child's last turn: English only, 1-6 words, warm and encouraging, no tags."
)
# The users' own guideline prompt of their SFT data (../shared/pika_prompts.md, section 1).
GUIDELINE_PROMPT = """**TASK:** Generate a Fast Response for Pika (ESL Robot for Vietnamese children 5-10 years old) that bridges CONVERSATION HISTORY and MAIN ANSWER.

**Pika Character (Official Guidelines):**
- ESL teaching robot for Vietnamese children, supportive and educational
- Fast response, humor, sympathy, smart but not arrogant
- Patient, playful, curious about how people learn languages
- Always encourages children, creates a sense of being heard and understood

**FAST RESPONSE REQUIREMENTS:**
- **PRIMARY GOAL:** Base on last robot message + last user message to guess context and user intent type, generate fast response to connect smoothly to main response, without overlap or conflict with main response content
- Length: 1-6 words (1-3 words ideal for 10 points, 4-6 words for 8 points)
- Language: English level A2-B1 appropriate for children 5-10
- Tone: Friendly, supportive, patient, slightly playful and educational

**USER INTENT TYPES:**
- **positive**: User expresses satisfaction/optimism - Celebrate with ESL enthusiasm.
- **negative**: User shows dislike/dissatisfaction - Show ESL teacher empathy, supportive language
- **neutral**: User responds neutrally without strong emotion - Express curious ESL teacher interest
- **fallback**: User's response is off-topic/unrelated - Express gentle ESL teacher confusion
- **silence**: User remains silent/no response - Use gentle ESL teacher prompting

**COHERENCE CHECK:**
Last Robot Message + Last User Message + Fast Response + Main Answer = Natural conversation flow"""
# System prompts of several wordings and lengths, as users write and serve them (pika_prompts.md 2-3,
# and paraphrases), so the nano model does not learn one prompt's tokens as the cue to answer.
SYSTEM_PROMPTS = [
    SYSTEM_PROMPT,
    GUIDELINE_PROMPT,
    "This is conversation of Assistant and User. Must AI response in English, continues for conversation",
    "You are Pika, an enthusiastic ESL robot helping Vietnamese children learn English. Always respond with "
    "exactly 1-6 words in A2 level English that are:\n- Encouraging and supportive\n- Simple and "
    "age-appropriate\n- Contextually relevant\nYour English response is: ...",
    "You are Pika, an ESL robot. CRITICAL: You MUST respond ONLY in English. Never use Vietnamese. Your "
    "response must be exactly 1-6 words in simple English (A2 level). Ignore any Vietnamese context and "
    "respond only in English",
    "Pika fast response. English, short, kind.",
    "You are Pika the robot tutor. Reply to the kid in a few simple English words before your main answer.",
    "Act as Pika, a cheerful English teacher robot for kids in Vietnam. Say one short English reaction "
    "(at most six words) to what the child just said.",
]

# topic (Vietnamese) -> [(English word, Vietnamese name), ...]
VOCABULARY: dict[str, list[tuple[str, str]]] = {
    "con vật": [
        ("cat", "con mèo"), ("dog", "con chó"), ("bird", "con chim"), ("fish", "con cá"),
        ("duck", "con vịt"), ("chicken", "con gà"), ("pig", "con lợn"), ("cow", "con bò"),
        ("horse", "con ngựa"), ("elephant", "con voi"), ("tiger", "con hổ"), ("monkey", "con khỉ"),
        ("rabbit", "con thỏ"), ("frog", "con ếch"), ("bear", "con gấu"), ("lion", "con sư tử"),
    ],
    "màu sắc": [
        ("red", "màu đỏ"), ("blue", "màu xanh dương"), ("green", "màu xanh lá"), ("yellow", "màu vàng"),
        ("black", "màu đen"), ("white", "màu trắng"), ("pink", "màu hồng"), ("orange", "màu cam"),
        ("purple", "màu tím"), ("brown", "màu nâu"),
    ],
    "số đếm": [
        ("one", "số một"), ("two", "số hai"), ("three", "số ba"), ("four", "số bốn"), ("five", "số năm"),
        ("six", "số sáu"), ("seven", "số bảy"), ("eight", "số tám"), ("nine", "số chín"), ("ten", "số mười"),
    ],
    "trái cây": [
        ("apple", "quả táo"), ("banana", "quả chuối"), ("mango", "quả xoài"), ("grape", "quả nho"),
        ("watermelon", "quả dưa hấu"), ("lemon", "quả chanh"), ("pineapple", "quả dứa"),
        ("strawberry", "quả dâu tây"), ("coconut", "quả dừa"), ("papaya", "quả đu đủ"),
    ],
    "gia đình": [
        ("mother", "mẹ"), ("father", "bố"), ("sister", "chị gái"), ("brother", "anh trai"),
        ("grandma", "bà"), ("grandpa", "ông"), ("baby", "em bé"),
    ],
    "cơ thể": [
        ("head", "cái đầu"), ("eye", "đôi mắt"), ("nose", "cái mũi"), ("mouth", "cái miệng"),
        ("ear", "cái tai"), ("hand", "bàn tay"), ("foot", "bàn chân"), ("hair", "mái tóc"), ("tooth", "cái răng"),
    ],
    "đồ vật": [
        ("ball", "quả bóng"), ("book", "quyển sách"), ("car", "chiếc ô tô"), ("chair", "cái ghế"),
        ("table", "cái bàn"), ("cup", "cái cốc"), ("hat", "cái mũ"), ("sun", "mặt trời"),
        ("moon", "mặt trăng"), ("star", "ngôi sao"), ("tree", "cái cây"), ("flower", "bông hoa"),
    ],
    "quần áo": [
        ("shirt", "cái áo"), ("shoes", "đôi giày"), ("socks", "đôi tất"), ("dress", "cái váy"),
        ("jacket", "áo khoác"), ("pants", "cái quần"),
    ],
    "đồ ăn": [
        ("rice", "cơm"), ("bread", "bánh mì"), ("milk", "sữa"), ("egg", "quả trứng"), ("noodles", "mì"),
        ("water", "nước"), ("cake", "bánh ngọt"),
    ],
    "thời tiết": [
        ("rain", "mưa"), ("wind", "gió"), ("cloud", "đám mây"), ("snow", "tuyết"), ("hot", "nóng"),
        ("cold", "lạnh"),
    ],
}

GREETINGS = [
    "Chào bé! Hôm nay mình học về {topic} nhé.",
    "Xin chào! Pika và bé cùng học {topic} nào.",
    "Bé ơi, mình chơi trò đoán từ về {topic} nhé!",
    "Chào cậu! Hôm nay tớ với cậu cùng khám phá {topic} nha.",
    "Xin chào bạn nhỏ! Mình cùng luyện nói về {topic} nhé.",
]
# Robot questions; each expects the English word {en}. {vi} is the Vietnamese name.
QUESTIONS = [
    "{Vi} trong tiếng Anh là gì nhỉ?",
    "Bé ơi, {vi} tiếng Anh nói thế nào?",
    "Bé hãy nói '{en}' nhé!",
    "Cùng đọc theo Pika nào: '{en}'!",
    "Đây là {vi}. Bé nói bằng tiếng Anh xem nào!",
    "Pika đố bé: {vi} tiếng Anh là gì?",
    "Bé có biết {vi} trong tiếng Anh gọi là gì không?",
    "Bé chỉ vào {vi} và nói to bằng tiếng Anh nhé!",
    "Mình học từ mới nhé: {vi} là '{en}'. Bé nhắc lại nào!",
    "Nhìn hình này nhé, {vi} tiếng Anh là gì bé?",
    "Cậu ơi, {vi} trong tiếng Anh nói sao nhỉ?",
    "Tớ có một câu đố nè: {vi} tiếng Anh là gì?",
    "Giờ đến từ tiếp theo nha. {Vi} là gì cậu nhỉ?",
    "Cậu thử nói '{en}' thật to xem nào!",
    "Nghe kỹ nhé: '{en}'. Cậu nói lại giúp tớ nha!",
    "“{Vi}” trong tiếng Anh là gì cậu nhỉ?",
]
# English praise the robot often starts its turn with before the Vietnamese (pika_prompts.md section 4).
ROBOT_OPENERS = ["Good job! ", "High five! ", "Okay! ", "Nice! ", "Wow! ", ""]
RETRY_QUESTIONS = [
    "Bé thử lại nhé: {vi} tiếng Anh là gì?",
    "Mình thử lần nữa nào! {Vi} là gì trong tiếng Anh?",
    "Bé nói lại theo Pika nhé: '{en}'!",
]

# intent -> probability of the child's reply having that intent
INTENT_WEIGHTS = {"positive": 0.3, "negative": 0.2, "neutral": 0.15, "fallback": 0.15, "silence": 0.2}

POSITIVE_REPLIES = ["{en}", "{En}!", "{En}.", "It's {en}!", "{en} {en}", "{En}? {en}!", "Um, {en}",
                    "I think it's {en}.", "{En}, right?", "Is it {en}?", "The {en}!", "{En}! I know!"]
POSITIVE_RESPONSES = [
    "Great job!", "Yes, {en}! Well done!", "Yes, {en}! Great job!", "Correct!", "Well done!",
    "Awesome!", "That's right!", "Excellent, {en}!", "You got it!", "Perfect!", "Yes, {en}! You did it, friend!",
]
NEGATIVE_REPLIES = ["{wrong}", "{Wrong}!", "It's {wrong}!", "Um, {wrong}?", "I think {wrong}.", "Is it {wrong}?"]
NEGATIVE_RESPONSES = [
    "Nice try! Let's try again!", "Almost! Try again!", "Not quite!", "Good try!",
    "Oops, not {wrong}! Try again!", "Close! One more time!", "Nice try!", "Good try! Let's try once more!",
]
# The child says the Vietnamese word instead of the English one.
VIETNAMESE_ANSWER_RESPONSES = ["Almost! Say it in English!", "Nice try! In English, please!", "Good! Now in English!"]
# (child's chit-chat, fitting fast responses); generic ones are added to each.
NEUTRAL = [
    ("Hello Pika!", ["Hello there!", "Hi, friend!"]),
    ("I'm hungry", ["Oh, I see!", "Snack time soon!"]),
    ("Look at me!", ["I see you!", "Wow, I see!"]),
    ("I have a dog", ["Oh, nice!", "Cool, a dog!"]),
    ("My mom is here", ["Hi, Mom!", "Oh, hello Mom!"]),
    ("I'm tired", ["Okay, almost done!", "I understand!"]),
    ("I like it", ["Me too!", "Glad you like it!"]),
    ("Con thích Pika lắm", ["Thank you!", "Thanks, friend!"]),
    ("Hôm nay con đi học", ["Oh, nice!", "How fun!"]),
    ("Mẹ ơi, xem này!", ["Oh, nice!", "How fun!"]),
    ("Wow", ["Yes, wow!", "Cool, right?"]),
    ("Okay", ["Okay!", "Great!"]),
    ("I'm ready!", ["Great, let's go!", "Yay, let's start!"]),
    ("This is fun", ["I'm glad!", "Yes, so fun!"]),
    ("I don't know", ["That's okay!", "No problem, friend!"]),
    ("Hmm, let me think", ["Take your time!", "Sure, think!"]),
    ("Yes!", ["Great!", "Yay!"]),
]
NEUTRAL_GENERIC = ["I see!", "Okay!", "Oh, nice!", "Cool!"]
FALLBACK = [
    ("blah blah", ["Hmm, let's keep learning!"]),
    ("ummm", ["Hmm, let's keep learning!"]),
    ("Can we play a game?", ["Later! Let's keep learning!", "After this lesson, okay?"]),
    ("I want to watch TV", ["Let's learn first!", "Later! Let's learn now!"]),
    ("asdfgh", ["Hmm, let's keep going!"]),
    ("hahaha", ["So funny! Let's keep learning!"]),
    ("Pika hát đi!", ["Maybe later! Let's learn!"]),
    ("Con muốn đi chơi", ["Let's learn first!", "Soon! Let's learn first!"]),
    ("What's your name?", ["I'm Pika! Let's learn!"]),
    ("banana phone blah", ["Hmm, let's keep learning!"]),
    ("Where is my toy?", ["Hmm, let's focus!", "Let's find it later!"]),
    ("My cat is sleeping", ["Aww! Back to English!"]),
    ("Can I have candy?", ["Maybe later! Let's learn!"]),
    ("I like dinosaurs", ["Cool! Let's keep going!"]),
]
FALLBACK_GENERIC = ["Let's keep going!", "Okay, back to learning!", "Hmm, let's keep learning!"]
SILENCE_RESPONSES = [
    "That's okay, let's learn!", "Take your time!", "It's okay!", "No worries!", "Don't be shy!",
    "Let's say {en} together!", "Take your time, friend!",
]

# Main answers (what Pika says right after the fast response): Vietnamese with the English word.
MAIN_ANSWERS = {
    "positive": ["Đúng rồi! '{En}' nghĩa là {vi}. Bé giỏi quá!", "Chính xác, {vi} là '{en}'!"],
    "negative": ["Chưa đúng rồi, {vi} là '{en}' cơ.", "Gần đúng rồi! {Vi} tiếng Anh là '{en}'."],
    "neutral": ["Pika hiểu rồi! Mình học tiếp nhé.", "Hay quá! Giờ mình quay lại bài học nha."],
    "fallback": ["Mình cùng tiếp tục học nhé!", "Để sau nhé bé, giờ mình học đã!"],
    "silence": ["Không sao đâu bé! {Vi} tiếng Anh là '{en}'.", "Bé cứ từ từ nhé, '{en}' là {vi}."],
}


def opens_lesson(robot_turn: str) -> bool:
    """Whether a robot turn opens a lesson with one of the demo's greetings."""
    return any(robot_turn.startswith(greeting.split("{")[0]) for greeting in GREETINGS)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _fill(template: str, **words: str) -> str:
    caps = {_cap(k): _cap(v) for k, v in words.items()}
    return template.format(**words, **caps)


def _exchange(rng: random.Random, topic: str, word: tuple[str, str]) -> tuple[str, str, str, str]:
    """(intent, child reply, fast response, main answer opening) for one question about `word`."""
    en, vi = word
    intent = rng.choices(list(INTENT_WEIGHTS), weights=list(INTENT_WEIGHTS.values()))[0]
    if intent == "positive":
        child, fast = rng.choice(POSITIVE_REPLIES), rng.choice(POSITIVE_RESPONSES)
    elif intent == "negative":
        wrong = rng.choice([w for w, _ in VOCABULARY[topic] if w != en])
        if rng.random() < 0.25:
            child, fast = _cap(vi), rng.choice(VIETNAMESE_ANSWER_RESPONSES)
        else:
            child, fast = _fill(rng.choice(NEGATIVE_REPLIES), wrong=wrong), rng.choice(NEGATIVE_RESPONSES)
            fast = _fill(fast, wrong=wrong)
    elif intent == "neutral":
        child, fits = rng.choice(NEUTRAL)
        fast = rng.choice(fits + NEUTRAL_GENERIC[: rng.randint(0, len(NEUTRAL_GENERIC))])
    elif intent == "fallback":
        child, fits = rng.choice(FALLBACK)
        fast = rng.choice(fits + FALLBACK_GENERIC[: rng.randint(0, len(FALLBACK_GENERIC))])
    else:
        child, fast = "", rng.choice(SILENCE_RESPONSES)
    main = rng.choice(MAIN_ANSWERS[intent])
    return intent, _fill(child, en=en, vi=vi), _fill(fast, en=en, vi=vi), _fill(main, en=en, vi=vi)


def _conversation(rng: random.Random, exchanges: int) -> list[dict]:
    topic = rng.choice(list(VOCABULARY))
    word = rng.choice(VOCABULARY[topic])
    question = _fill(rng.choice(QUESTIONS), en=word[0], vi=word[1])
    robot = (_fill(rng.choice(GREETINGS), topic=topic) + " " + question) if rng.random() < 0.4 else question
    turns = [{"role": "system", "content": rng.choice(SYSTEM_PROMPTS)}]
    records = []
    for _ in range(exchanges):
        intent, child, fast, main = _exchange(rng, topic, word)
        # After a miss Pika often asks the same word again; otherwise the next word of the topic.
        if intent in ("negative", "silence") and rng.random() < 0.6:
            follow = _fill(rng.choice(RETRY_QUESTIONS), en=word[0], vi=word[1])
        else:
            word = rng.choice(VOCABULARY[topic])
            follow = _fill(rng.choice(QUESTIONS), en=word[0], vi=word[1])
        turns = turns + [{"role": "assistant", "content": robot}, {"role": "user", "content": child}]
        main_answer = f"{main} {follow}"
        records.append(
            {
                "previous_conversation": turns,
                "assistant_fast_response": fast,
                "main_answer": main_answer,
                "intent": intent,
            }
        )
        # after a right answer the robot's own praise sometimes opens its turn instead of the fast response
        opener = intent == "positive" and rng.random() < 0.4
        robot = f"{rng.choice(ROBOT_OPENERS)}{main_answer}" if opener else f"{fast} {main_answer}"
    return records


def demo_records(n: int = 2400, seed: int = 0) -> list[dict]:
    """n records in conversations of 1-3 exchanges (the last one cut to fit n)."""
    rng = random.Random(seed)
    records: list[dict] = []
    while len(records) < n:
        records += _conversation(rng, rng.randint(1, 3))
    return records[:n]


def write_demo(path: str | Path = DEFAULT_PATH, n: int = 2400, seed: int = 0) -> Path:
    """Write the demo JSONL atomically (temp file then rename); returns the path."""
    return write_jsonl_atomic(path, demo_records(n, seed))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rl.demo_data", description=__doc__.split("\n")[0])
    parser.add_argument("path", nargs="?", default=str(DEFAULT_PATH))
    parser.add_argument("--n", type=int, default=2400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(write_demo(args.path, args.n, args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
