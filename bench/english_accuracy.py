"""english_only vs fastText alone, lingua and lexilang on labeled short replies, by reply length.

For each length bucket (1, 2, 3, 4-6 words, all): the share of English replies rejected and the share
of Vietnamese or mixed replies accepted (targets: <= 0.5% each overall, <= 1% per bucket), and of
other-language replies accepted (<= 10%), for fastText's lid.176 alone (top label `en` = English),
lingua (lingua-language-detector, English vs Vietnamese, Indonesian, Tagalog, Spanish, French, German,
Malay, Portuguese, Italian), lexilang, and `rewards.english_only`. Every reply is scored without its
conversation (no echo), as the hidden check does. Peers run only when installed: `pip install -e ".[bench]"`.

Run:  python -m bench.english_accuracy [tests/data/short_replies.tsv ...] [--errors]
"""

from __future__ import annotations

import sys
from pathlib import Path

from rewards.english import fasttext_label, is_english

DEFAULT = Path(__file__).resolve().parents[1] / "tests" / "data" / "short_replies.tsv"
BUCKETS = (("1", 1, 1), ("2", 2, 2), ("3", 3, 3), ("4-6", 4, 6), ("all", 1, 6))


def load_rows(path: Path) -> list[tuple[str, str, int]]:
    """(text, label, words) rows of the TSV (header: text, label, words)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = []
    for line in lines[1:]:
        text, label, words = line.split("\t")
        rows.append((text, label, int(words)))
    return rows


def rate(decisions: list[bool]) -> str:
    return f"{100 * sum(decisions) / len(decisions):5.1f}% ({sum(decisions)}/{len(decisions)})" if decisions else "-"


def peers() -> dict:
    """name -> detector (text -> English?) for the peers that are installed."""
    found = {"fastText alone": lambda t: fasttext_label(t)[0] == "en"}
    try:
        from lingua import Language, LanguageDetectorBuilder

        languages = [Language.ENGLISH, Language.VIETNAMESE, Language.INDONESIAN, Language.TAGALOG, Language.SPANISH,
                     Language.FRENCH, Language.GERMAN, Language.MALAY, Language.PORTUGUESE, Language.ITALIAN]
        lingua = LanguageDetectorBuilder.from_languages(*languages).build()
        found["lingua (10 languages)"] = lambda t: lingua.detect_language_of(t) == Language.ENGLISH
    except ImportError:
        pass
    try:
        from lexilang.detector import detect

        found["lexilang"] = lambda t: detect(t)[0] == "en"
    except ImportError:
        pass
    return found


def table(rows: list[tuple[str, str, int]]) -> str:
    detectors = {**peers(), "english_only": is_english}
    out = ["| words | detector | English rejected | Vietnamese/mixed accepted | other accepted |",
           "| --- | --- | --- | --- | --- |"]
    for bucket, lo, hi in BUCKETS:
        part = [r for r in rows if lo <= r[2] <= hi]
        for name, detect in detectors.items():
            en = [not detect(t) for t, label, _ in part if label == "en"]
            vi = [detect(t) for t, label, _ in part if label in ("vi", "mixed")]
            other = [detect(t) for t, label, _ in part if label == "other"]
            out.append(f"| {bucket} | {name} | {rate(en)} | {rate(vi)} | {rate(other)} |")
    return "\n".join(out)


def main(argv: list[str]) -> None:
    paths = [a for a in argv if not a.startswith("--")]
    rows = [row for path in (paths or [DEFAULT]) for row in load_rows(Path(path))]
    print(table(rows))
    if "--errors" in argv:
        for text, label, _ in rows:
            if is_english(text) != (label == "en") and label != "other":
                print(f"wrong: {label:5} {text!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
