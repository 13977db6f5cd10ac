"""english_only v2's mechanisms on real cases, the blind rounds, and properties over the lexicons.

The blind rounds (tests/data/blind_round*.tsv) were each written by someone who had not seen the detector's
misses on them; bench/RESULTS.md has their figures as first measured and after the fixes they led to.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewards.english import (
    ENGLISH_FREQUENT, ENGLISH_PHONICS, ENGLISH_PHRASES, FOREIGN_CURATED, VIETNAMESE_ADDRESS_PLAIN, VIETNAMESE_COMMON, VIETNAMESE_COMPOUNDS, VIETNAMESE_MARKED_NAMES,
    VIETNAMESE_LEANING, VIETNAMESE_LOANWORDS, VIETNAMESE_NAMES, VIETNAMESE_REPLY_PLAIN, VIETNAMESE_SYLLABLES, ENGLISH_WORDS, _english_word,
    _VI_SYLLABLE, _plain, english_only, is_english,
)

DATA = Path(__file__).parent / "data"


def _rows(name: str) -> list[tuple[str, str]]:
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()[1:]
    return [(line.split("\t")[0], line.split("\t")[1]) for line in lines]


@pytest.mark.parametrize("text, expected", [
    # (a) phonics drill words that are also Vietnamese syllables: English alone or in a drill
    ("Den!", True), ("Dam!", True), ("Cam!", True), ("Ban!", True), ("Tan, ban, can!", True), ("Cat, bat, hat!", True),
    ("Do, re, mi!", True), ("Hang on!", True), ("Yes, tin!", True), ("So long!", True), ("Hop on!", True),
    # ... and Vietnamese inside a Vietnamese word, or as praise or address
    ("Cam on, thank you!", False), ("cam on ban", False), ("May man", False), ("Ban be", False), ("Hat hay", False),
    ("Con hay", False), ("Hay", False), ("Tot", False), ("Be", False),
    # (b) names: capitalised Vietnamese syllables inside an English reply, with or without diacritics
    ("Cool, Kiên!", True), ("Wow, Lâm!", True), ("Super, Quỳnh!", True), ("Awesome, Dũng!", True),
    ("Great try, Thu Trang!", True), ("Go, Minh Anh!", True), ("Cool, Ha Long Bay!", True),
    ("Hạ Long Bay is pretty!", True), ("Good job, Tuan!", True), ("Fantastic, Nhi!", True),
    ("Yes, Đúng!", False), ("Great, Giỏi!", False), ("Bảo Ngọc", False), ("Nhi?", False), ("Phở!", False),
    # (d) Vietnamese spelled like English: the address term closing a reply, unless English grammar wants it
    ("Great job be!", False), ("Good job ban!", False), ("Good, con!", False), ("Let it be!", True),
    ("It will be!", True),
    # (c) Telex / VNI keystrokes, the tone key anywhere after the vowel keys
    ("Tuyeejt!", False), ("gioir quas", False), ("d9u1ng ro62i", False), ("chawcs", False), ("Box!", True),
    ("Zoom!", True), ("Boop!", True), ("Toot toot!", True),  # a closed syllable without its tone key is no Telex
    # (e) short phrases of other languages, romanised Korean, Japanese and Chinese included
    ("Hwaiting!", False), ("Majayo!", False), ("Omedetou!", False), ("Subarashii!", False), ("Jia you!", False),
    ("Jal haesseoyo!", False), ("Salamat po!", False), ("Increible!", False), ("Xie xie", False), ("Elsa!", True), ("Tokyo!", True), ("Pikachu!", True),
    # round 5/6 mechanisms: syllables run together (also in Telex / VNI), letters stretched ...
    ("tuyetvoi!", False), ("Dungroi", False), ("gioiqua", False), ("camon", False), ("colennao", False),
    ("gioirquas", False), ("gio3iqua1", False), ("gioiii", False), ("Hayyy!", False), ("coos leen", False),
    ("Tango!", True), ("Cheers, mate!", True), ("Durian!", True), ("Welcome to Hanoi!", True), ("Yaaay!", True),
    # ... English phrases and articles before Viet74K pairs, IPA and letter sounds in a drill
    ("The hat!", True), ("The van!", True), ("Tin can!", True), ("Ban the ball!", True), ("Tai chi!", True),
    ("Ha Long Bay!", True), ("Tra la la!", True), ("/æ/ like apple!", True), ("Ch, ch, chin!", True), ("The la!", False),
    # ... more names, foods and places, with and without diacritics
    ("Good job, Dung!", True), ("Dung!", False), ("Dung roi!", False), ("Yummy, I love xôi!", True),
    ("Let's eat bánh tráng!", True), ("Hello, Cần Thơ!", True), ("Land ho!", True), ("Ma and Pa!", True),
    # round 7: spelled and stuttered drill words, a letter's sound named, fruit, praise, words Vietnamese
    # web text uses too; a lone name stays undecided as English (one author of three called it English)
    ("b-e-d", True), ("Buh-buh-ball!", True), ("Short a!", True), ("Rambutan!", True), ("Ping pong!", True),
    ("Attagirl, Ngân!", True), ("hayquaa", False), ("Minh!", False), ("Thắng!", False),
])
def test_english_only_v2_mechanisms(text, expected):
    assert is_english(text) is expected
    assert english_only(prompts=None, completions=[text]) == [1.0 if expected else 0.0]


@pytest.mark.parametrize("name, english_max, vietnamese_max, other_max", [
    ("blind_round3.tsv", 0.02, 0.01, 0.10),
    ("blind_round4.tsv", 0.01, 0.005, 0.10),
    ("blind_round5.tsv", 0.005, 0.005, 0.10),
    ("blind_round6.tsv", 0.005, 0.005, 0.10),
    ("blind_round7.tsv", 0.01, 0.005, 0.10),  # three lone names ("Minh!") labeled English: see the test below
])
def test_blind_rounds_stay_near_the_targets(name, english_max, vietnamese_max, other_max):
    """Targets: <= 0.5% English rejected and Vietnamese/mixed accepted, <= 10% other accepted; the bounds
    leave one or two replies of slack for a round that has been fixed after it was measured."""
    rows = _rows(name)
    english = [t for t, label in rows if label == "en"]
    vietnamese = [t for t, label in rows if label in ("vi", "mixed")]
    other = [t for t, label in rows if label == "other"]
    assert len(rows) >= 250 and english and vietnamese and other
    rejected = [t for t in english if not is_english(t)]
    accepted = [t for t in vietnamese if is_english(t)]
    foreign = [t for t in other if is_english(t)]
    assert len(rejected) <= english_max * len(english), rejected
    assert len(accepted) <= vietnamese_max * len(vietnamese), accepted
    assert len(foreign) <= other_max * len(other), foreign


# ---------------------------------------------------------------- properties over the lexicons

PRAISE = ["Great job", "Good job", "Well done", "Nice", "Super", "Wow", "Yes", "Awesome", "Cool"]
ARTICLES = {"the", "a", "an"}
LOANED = {w for phrase in VIETNAMESE_LOANWORDS for w in _plain(phrase).split()}  # "Happy Tet!" is English
VI_ONLY = sorted(w for w in VIETNAMESE_SYLLABLES - ENGLISH_WORDS - VIETNAMESE_NAMES - LOANED if len(w) > 1)
NAME_SHAPED = sorted(w for w in VIETNAMESE_MARKED_NAMES if unicodedata.normalize("NFC", w) == w)
TELEX_TONES = {"\u0301": "s", "\u0300": "f", "\u0309": "r", "\u0303": "x", "\u0323": "j"}
TELEX_MARKS = {"\u0302": lambda c: c + c, "\u0306": lambda c: c + "w", "\u031b": lambda c: c + "w"}


def _telex(word: str) -> str:
    """The keys a Telex user types for a Vietnamese word: "tuyệt" -> "tuyeejt" is one spelling, "tuyeetj" another;
    this gives the tone key last."""
    out, tone = [], ""
    for ch in unicodedata.normalize("NFD", word.replace("đ", "dd")):
        if ch in TELEX_TONES:
            tone = TELEX_TONES[ch]
        elif ch in TELEX_MARKS and out:
            out[-1] = TELEX_MARKS[ch](out[-1])
        else:
            out.append(ch)
    return "".join(out) + tone


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(PRAISE), st.sampled_from(VI_ONLY), st.booleans())
def test_a_vietnamese_word_beside_praise_is_never_english(praise, syllable, comma):
    """Mixed replies are not English: "Great job, gioi", "Wow roi" (lower case: not a name)."""
    assert not is_english(f"{praise}{',' if comma else ''} {syllable}!")


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(PRAISE), st.sampled_from(NAME_SHAPED))
def test_a_vietnamese_name_after_praise_is_english(praise, name):
    """"Great job, Bảo!": a listed name, capitalised, after English praise."""
    assert is_english(f"{praise}, {name.capitalize()}!")


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(w for w in VIETNAMESE_COMMON if " " not in w and len(w) > 1)))  # not the letter đ
def test_vietnamese_typed_as_telex_with_a_vowel_key_is_never_english(word):
    """Telex with a vowel key (aa, ee, oo, aw, ow, uw, dd) is not English unless it spells an English word
    ("boons" = bốn stays English) or ends in the vowel key: "ddungs", "laams", "tooir", "chawcs", "thuw"."""
    typed = _telex(word)
    keys = ("aa", "ee", "oo", "aw", "ow", "uw", "dd")
    if typed == unicodedata.normalize("NFD", word) or not any(k in typed for k in keys) or _english_word(typed):
        return
    if typed.endswith(("aa", "ee", "oo", "aw")):
        return  # a toneless â/ê/ô/ă at the end reads as an English sound ("Hee!", "Choo!"): a trade-off, kept
    assert not is_english(typed), (word, typed)
    assert not is_english(f"Yes, {typed}!"), (word, typed)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(sorted(c for c in VIETNAMESE_COMPOUNDS if not set(c.split()) & (LOANED | ARTICLES)
                              and c not in ENGLISH_PHRASES and set(c.split()) & (ENGLISH_PHONICS | VIETNAMESE_LEANING))))
def test_a_vietnamese_word_of_two_shared_spellings_is_not_english(compound):
    """"may man" (may mắn), "ban be" (bạn bè): each syllable is English, the pair is Vietnamese (when one
    of them is a drill word or leans Vietnamese, and it is no English phrase or article: "tin can", "the hat")."""
    assert not is_english(compound)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(sorted(ENGLISH_PHONICS & VIETNAMESE_SYLLABLES - VIETNAMESE_REPLY_PLAIN)))
def test_a_drill_word_alone_or_in_a_drill_is_english(word):
    """"Den!", "Yes, den!", "Cat, den, hat!"; not the praise words ("Tot" = tốt)."""
    assert is_english(f"{word.capitalize()}!")
    assert is_english(f"Yes, {word}!") or word in VIETNAMESE_ADDRESS_PLAIN
    assert is_english(f"Cat, {word}, hat!")


VI_LONG = sorted(w for w in VI_ONLY if len(w) >= 3 and _VI_SYLLABLE.fullmatch(w))  # syllables, not chat shorthand


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(VI_LONG), st.sampled_from(VI_LONG), st.booleans())
def test_vietnamese_syllables_typed_without_their_spaces_are_never_english(first, second, praise):
    """"tuyetvoi", "gioiqua": two syllables no English list holds, run together, alone or after praise."""
    joined = first + second
    if _english_word(joined):
        return  # the pair spells an English word: English, as the rule says
    assert not is_english(joined), joined
    assert not is_english(f"Great job, {joined}!" if praise else f"{joined.capitalize()}!"), joined


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(VI_LONG), st.integers(3, 6))
def test_a_vietnamese_syllable_with_a_letter_stretched_is_never_english(syllable, times):
    """"gioiii", "quaaa", "nhaaa": a Vietnamese word said long stays Vietnamese."""
    stretched = syllable + syllable[-1] * (times - 1)
    assert not is_english(stretched), stretched


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(w for w in ENGLISH_FREQUENT - FOREIGN_CURATED if w.isalpha() and len(w) >= 4)))
def test_a_frequent_english_word_is_english_alone_and_after_praise(word):
    """No Vietnamese rule claims a frequent English word as it is ("land", "tango" are never split)."""
    assert is_english(f"Wow, {word}!"), word


def test_reply_words_are_never_read_as_names():
    """Praise, particles and address terms capitalised after English stay Vietnamese: "Yes, Giỏi!"."""
    for word in sorted(VIETNAMESE_REPLY_PLAIN & VIETNAMESE_SYLLABLES - ENGLISH_WORDS - VIETNAMESE_NAMES):
        if len(word) > 1:  # a lone letter is a letter
            assert not is_english(f"Great job, {word.capitalize()}!"), word
