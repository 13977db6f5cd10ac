"""What a set of replies says about a policy: the fast-response rates, collapse, and fit.

Shares in [0, 1], computed the same way by the evaluation (`eval.json`), the nano build
(`nano_build.json`) and the per-step rollout metrics:
- `english_rate`, `tag_rate`, `word_ok_rate`: the experiment's rule checks (`rl.rules.ReplyRules`, derived
  from its rewards: `word_ok_rate` counts the words its `word_count` pays for; Pika's 1-6 by default);
- collapse: `empty_rate` (nothing said), `distinct_rate` (distinct replies / replies, after
  `rewards.fit.normalise`), `top_reply_rate` (share of the most common reply, itself in `top_reply`).
  A policy that found one stock reply has distinct_rate -> 1/n and top_reply_rate -> 1;
- fit (`fit_rates`): `fit_rate`, the share of replies that fit their record (`rewards.fit.fits`: intent
  agreement where records carry an intent, reference similarity otherwise), `reference_similarity` (the
  mean similarity to the reference), and `by_intent`, the same rates per intent where records carry one.
"""

from __future__ import annotations

from collections import Counter

from rewards.fit import ReferenceBank, fits, normalise, similarity
from rl.rules import PIKA_RULES, ReplyRules

# the per-policy numbers of eval.json, in the order reports show them (then `top_reply`, `by_intent`)
METRICS = ("english_rate", "tag_rate", "word_ok_rate", "empty_rate", "distinct_rate", "top_reply_rate", "fit_rate",
           "reference_similarity", "judge_mean", "reward_mean", "n")
# the shares a chart can put on one 0-1 axis
SHARES = ("english_rate", "tag_rate", "word_ok_rate", "empty_rate", "distinct_rate", "top_reply_rate", "fit_rate",
          "judge_mean")


def collapse_rates(replies: list[str]) -> dict:
    """empty_rate, distinct_rate, top_reply_rate and top_reply of a list of replies."""
    n = len(replies)
    if not n:
        return {"empty_rate": None, "distinct_rate": None, "top_reply_rate": None, "top_reply": None}
    counts = Counter(normalise(r) for r in replies)
    top, top_count = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))  # ties: the same reply everywhere
    return {
        "empty_rate": sum(not r.strip() for r in replies) / n,
        "distinct_rate": len(counts) / n,
        "top_reply_rate": top_count / n,
        "top_reply": next(r for r in replies if normalise(r) == top),
    }


def reply_rates(replies: list[str], rules: ReplyRules = PIKA_RULES) -> dict:
    """The rates that decide whether replies are fast responses (by `rules`), and whether they collapsed."""
    n = len(replies)
    if not n:
        return {"english_rate": None, "tag_rate": None, "word_ok_rate": None, **collapse_rates(replies), "n": 0}
    return {
        "english_rate": sum(map(rules.english, replies)) / n,
        "tag_rate": sum(map(rules.tagged, replies)) / n,
        "word_ok_rate": sum(map(rules.word_ok, replies)) / n,
        **collapse_rates(replies),
        "n": n,
    }


def fit_flags(replies: list[str], references: list[str], intents: list[str]) -> list[bool]:
    """Whether each reply fits its record (`rewards.fit.fits`).

    The intents' references come from the evaluated records themselves: the set a reply is judged
    against is the set it was asked about, with no outside list to keep in sync.
    """
    bank = ReferenceBank(references, intents)
    return [fits(r, ref, intent, bank) for r, ref, intent in zip(replies, references, intents)]


def fit_rates(replies: list[str], references: list[str], intents: list[str], flags: list[bool] | None = None,
              rules: ReplyRules = PIKA_RULES) -> dict:
    """fit_rate and reference_similarity of replies against their records' references, and by_intent."""
    n = len(replies)
    if not n:
        return {"fit_rate": None, "reference_similarity": None, "by_intent": {}}
    fit = fit_flags(replies, references, intents) if flags is None else flags
    sims = [similarity(r, ref) for r, ref in zip(replies, references)]
    by_intent = {}
    for intent in sorted({i for i in intents if i}):
        idx = [k for k, i in enumerate(intents) if i == intent]
        chosen = [replies[k] for k in idx]
        collapse = collapse_rates(chosen)
        by_intent[intent] = {
            "n": len(idx),
            "fit_rate": sum(fit[k] for k in idx) / len(idx),
            "english_rate": sum(map(rules.english, chosen)) / len(idx),
            "empty_rate": collapse["empty_rate"],
            "distinct_rate": collapse["distinct_rate"],
            "top_reply_rate": collapse["top_reply_rate"],
            "top_reply": collapse["top_reply"],
        }
    return {"fit_rate": sum(fit) / n, "reference_similarity": sum(sims) / n, "by_intent": by_intent}


def metrics_line(metrics: dict) -> str:
    """One console line of an evaluation: the METRICS that have a value, floats to 3 places (the
    per-intent breakdown and the top reply stay in eval.json / eval.md)."""
    return ", ".join(f"{k}={metrics[k]:.3f}" if isinstance(metrics[k], float) else f"{k}={metrics[k]}"
                     for k in METRICS if metrics.get(k) is not None)
