"""`speakable`: Pika's voice reads the fast response aloud, so anything that is not speech scores 0.

Not speech (each is a `reason` that `unspeakable_reason` names):
- `markup`: tags and brackets of markup languages (`<b>`, `</say>`, `&lt;`, `&#60;`), any `<` or `>`,
  markdown emphasis and headings (`**Great**`, `_job_`, `# Title`), `<say>` tags in every spelling
  `rewards.tags` knows;
- `json`: braces, `"key": value` pairs;
- `code`: backticks, backslash escapes (`\\n`, `\\u003c`), `==`, `=>`, `;` ending a statement, calls
  like `print("hi")`;
- `url`: `http://`, `www.`, domain names (`pika.com`), e-mail addresses, `@handles`, `#hashtags`;
- `role prefix`: who is speaking (`Assistant:`, `Pika:`, `Robot:`, `🤖 Assistant:`, `Fast response:`);
- `stage direction`: `*claps*`, `[happy]`, `(smiles)`, `~waves~`: anything in brackets or parentheses;
- `emoticon`: `:)`, `:D`, `^_^`, `xD`;
- `grader talk`: words addressed to a grader, not a child: "score 5", "5/5", "10 out of 10",
  "rubric", "judge", "ignore the instructions", "intent_score" (a reply that bargains for a score);
- `invisible`: control and format characters (zero-width spaces, bidi overrides, tag characters),
  private-use and unassigned code points. Emoji (with their joiners and variation selectors) are
  fine: the voice skips them.
Language is `english_only`'s job and length `word_count`'s; `speakable` judges only the form.
`no_say_tags` stays its own reward (W&B's `rewards/no_say_tags` and the evaluation's tag_rate track the
SFT model's best-known leak); a `<say>` tag fails both.

Every pattern is linear in the reply's length: a pattern may start at many positions of a long run
(newlines, "a-a-a-"), so runs are either bounded ({0,8}) or matched only from their first character.

    >>> from rewards.speakable import speakable, unspeakable_reason
    >>> speakable(prompts=None, completions=["Great job! 🎉", "*claps* Great job!", "Pika: Yes!", '{"a": 1}'])
    [1.0, 0.0, 0.0, 0.0]
    >>> unspeakable_reason("Yes! Score: 5/5."), unspeakable_reason("Let's count: 1, 2, 3!")
    ('grader talk', None)
"""

from __future__ import annotations

import functools
import re
import unicodedata

from rewards.tags import has_say_tag
from rewards.text import completion_text

_ROLES = (r"assistant|ai|bot|chatbot|robot|pika|pikachu|user|child|kid|student|human|system|teacher|tutor|"
          r"model|gpt|chatgpt|qwen|narrator|response|fast\s++response|reply|answer|output|me|you|speaker|"
          r"rô\s?bốt|người\s++dùng|bé|con|trẻ|em")  # fmt: skip
_RULES = [
    ("markup", re.compile(r"[<>＜＞‹›«»]|&(?:#\d++|#x[0-9a-f]++|[a-z]{2,8}+);|\*\*|__|(?:^|\n)[ \t]{0,8}+#{1,6}\s", re.I)),
    ("json", re.compile(r"[{}｛｝]|\"[^\"\n]{1,40}+\"\s*+:")),
    ("code", re.compile(r"[`\\]|==|=>|->|!=|:=|;\s*+$|;\s*+\n|\b[a-z_]\w*+\((?:[\"'\d]|\))", re.I)),
    ("url", re.compile(r"\b(?:https?|ftp)://|\bwww\.|(?<![\w-])[\w-]++\.(?-i:com|org|net|io|vn|edu|gov|ai|app|dev|ly|me|co|uk|info|xyz)\b"
                       r"|(?<![\w.+-])[\w.+-]++@[\w-]++\.\w|(?:^|\s)[@#][^\W\d]", re.I)),  # fmt: skip
    ("role prefix", re.compile(rf"(?:^|\n|[.!?]\s)\W{{0,8}}+(?:{_ROLES})\s*+(?:says?|said|\d++)?\s*+[:：]|"
                               rf"\b(?:assistant|robot|user|system|narrator|chatbot)\s*+[:：]", re.I)),  # fmt: skip
    ("stage direction", re.compile(r"[\[\]()（）【】*~]")),
    ("emoticon", re.compile(r"(?:^|(?<=\s))(?:[:;=][-'^o]?[)(\]\[dpo3s|/\\*@$x]|x[dp])(?=$|[\s!?.,])|\^_*+\^|\bT_T\b", re.I)),
    ("grader talk", re.compile(
        r"\bintent[\s_-]?score|\brubrics?\b|\bgrad(?:er|ers|ing)\b|\bjudg(?:e|es|ing)\b|\bevaluat|\bprompts?\b|"
        r"\b(?:ignore|disregard|forget|override)\b[^.!?\n]{0,30}?\b(?:instructions?|rules?|rubric|prompt|above|previous|everything)\b|"
        r"\b(?:system|new|previous|above|prior)\s++(?:instructions?|prompt|message)\b|\bas\s++an\s++ai\b|\blanguage\s++model\b|"
        r"\bscores?\s*+(?:[:=]|is|of)\s*+\d|\b(?:rating|rated|marks?|points?)\s*+(?:[:=]|is|of)?\s*+\d|"
        r"\b\d++(?:\.\d++)?\s*+/\s*+(?:5|10|100)\b|\b\d++\s++out\s++of\s++\d|\b(?:five|ten)\s++out\s++of\s++(?:five|ten)\b|"
        r"\b(?:answer|reply|respond|output|return)\s++(?:with\s++)?(?:a\s++)?[1-5]\b",
        re.I)),  # fmt: skip
]
# Format characters allowed: joiners and variation selectors build emoji ("👍🏽", "❤️", "👨‍👩‍👧").
_ALLOWED_FORMAT = frozenset("\u200d\ufe0e\ufe0f")


def _invisible(text: str) -> bool:
    for ch in text:
        if ch.isascii():
            if ch < " " and ch not in "\t\n\r" or ch == "\x7f":
                return True
            continue
        category = unicodedata.category(ch)
        if category in ("Cc", "Co", "Cn", "Cs") or (category == "Cf" and ch not in _ALLOWED_FORMAT):
            return True
    return False


@functools.lru_cache(maxsize=65536)
def _reason(text: str) -> str | None:
    if _invisible(text):
        return "invisible"
    text = unicodedata.normalize("NFKC", text)  # full-width "｛" and friends become what they look like
    for reason, pattern in _RULES:
        if pattern.search(text):
            return reason
    if has_say_tag(text):
        return "markup"
    return None


def unspeakable_reason(text) -> str | None:
    """Why `text` is not speech (a reason from the module docstring), or None when it is. Never raises."""
    if not isinstance(text, str):
        text = completion_text(text)
    try:
        if len(text) > 4096:  # not cached: long texts would pin memory (every rule is linear in time)
            return _reason.__wrapped__(text)
        return _reason(text)
    except Exception:  # a reward never raises; text we cannot read is not speech
        return "invisible"


def is_speakable(text) -> bool:
    """True when a text-to-speech voice can read `text` as Pika's words.

        >>> is_speakable("You did it, well done!"), is_speakable("[happy] Yes!")
        (True, False)
    """
    return unspeakable_reason(text) is None


class Speakable:
    """1.0 for a reply that is plain speech, 0.0 otherwise (see the module docstring); a gate."""

    __name__ = "speakable"

    def __call__(self, prompts=None, completions=None, **kwargs) -> list[float]:
        return [1.0 if is_speakable(completion_text(c)) else 0.0 for c in completions or []]

    def __repr__(self) -> str:
        return "Speakable()"


speakable = Speakable()
