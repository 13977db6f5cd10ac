"""Judge verdicts kept across calls and runs: an SQLite file of key -> intent score.

The key hashes (judge model, prompt template text, context, completion), so a new judge model or an
edited template never reuses old verdicts. Only real scores are stored: failures and unusable
answers are asked again next time. A connection is opened per batch (cheap), so the cache works from
TRL's event-loop thread, from several processes at once (WAL) and survives pickling. A cache that
cannot be opened is skipped with one warning; the judge still works.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import time
from pathlib import Path

log = logging.getLogger(__name__)


def cache_key(model: str, template_text: str, context: tuple, completion: str) -> str:
    payload = json.dumps([model, template_text, list(context), completion], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class VerdictCache:
    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path else None
        self._warned = False

    def get_many(self, keys: list[str]) -> dict[str, float]:
        def query(db: sqlite3.Connection) -> dict[str, float]:
            found: dict[str, float] = {}
            for start in range(0, len(keys), 500):  # SQLite's bound-parameter limit
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                found.update(db.execute(f"SELECT key, score FROM verdicts WHERE key IN ({marks})", chunk).fetchall())
            return found

        return self._with_db(query, {}) if keys else {}

    def put_many(self, scores: dict[str, float]) -> None:
        now = time.time()
        rows = [(k, v, now) for k, v in scores.items()]
        if rows:
            self._with_db(lambda db: db.executemany("INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?)", rows), None)

    def _with_db(self, work, default):
        """Run `work(connection)` and commit; a broken cache costs requests, never the reward."""
        db = self._open()
        if db is None:
            return default
        try:
            result = work(db)
            db.commit()
            return result
        except sqlite3.Error as err:
            self._warn(err)
            return default
        finally:
            db.close()

    def _open(self) -> sqlite3.Connection | None:
        if self.path is None:
            return None
        db = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=10)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE IF NOT EXISTS verdicts (key TEXT PRIMARY KEY, score REAL NOT NULL, created REAL)")
            return db
        except (OSError, sqlite3.Error) as err:
            if db is not None:
                db.close()
            self._warn(err)
            return None

    def _warn(self, err: Exception) -> None:
        if not self._warned:  # once per reward: a read-only disk should not flood the log
            log.warning("judge cache %s unusable (%s); judging without it", self.path, err)
            self._warned = True
