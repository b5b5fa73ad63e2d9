"""One SQLite database (WAL) for all durable state: device-model values the CSMS set,
the outbound transaction-message queue, open transactions, small station facts.

Schema changes are numbered migrations applied in order (PRAGMA user_version).
Writes commit before the caller acts on them (write before send).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MIGRATIONS: list[str] = [
    # 1: the first schema
    """
    CREATE TABLE variables (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE outbound (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        message_id TEXT NOT NULL,
        action TEXT NOT NULL,
        payload TEXT NOT NULL,
        transaction_id TEXT,
        sent INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE transactions (
        id TEXT PRIMARY KEY,
        evse_id INTEGER,
        connector_id INTEGER,
        next_seq_no INTEGER NOT NULL,
        id_token TEXT,
        ended INTEGER NOT NULL DEFAULT 0
    );
    """,
    # 2: the security log (A04.FR.04, append-only) and the critical events the CSMS has
    # not confirmed yet (A04.FR.02; security/events.py, ocpp/security_events.py)
    """
    CREATE TABLE security_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        timestamp TEXT NOT NULL,
        type TEXT NOT NULL,
        tech_info TEXT,
        critical INTEGER NOT NULL
    );
    CREATE TRIGGER security_log_append_only BEFORE UPDATE ON security_log
    BEGIN SELECT RAISE(ABORT, 'the security log is append-only'); END;
    CREATE TABLE security_outbox (
        event_id INTEGER PRIMARY KEY,
        message_id TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0
    );
    """,
]


@dataclass(frozen=True)
class QueuedMessage:
    id: int
    message_id: str
    action: str
    payload: dict[str, Any]
    sent: bool
    attempts: int


class Storage:
    def __init__(self, path: Path) -> None:
        self.path = path
        # isolation_level=None: we issue BEGIN/COMMIT ourselves so a group of writes
        # (queue + transaction row) is atomic.
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self._migrate()

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            # executescript commits whatever is open first, so the migration carries
            # its own BEGIN/COMMIT: a crash mid-migration leaves the previous version.
            self.db.executescript(f"BEGIN;\n{script}\nPRAGMA user_version={number};\nCOMMIT;")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()

    # -- small facts -------------------------------------------------------------
    def get(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM kv WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def put(self, key: str, value: Any) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, json.dumps(value)))

    # -- device model ------------------------------------------------------------
    def variables(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT key, value FROM variables").fetchall())

    def put_variable(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO variables VALUES (?, ?)", (key, value))

    # -- outbound queue ----------------------------------------------------------
    def enqueue(
        self,
        message_id: str,
        action: str,
        payload: dict[str, Any],
        transaction: tuple[str, int | None, int | None, int, str | None, bool] | None = None,
    ) -> int:
        """Queue a message and (optionally) record its transaction's progress, in one
        commit: (id, evse_id, connector_id, next_seq_no, id_token json, ended)."""
        with self.transaction() as db:
            tx_id = transaction[0] if transaction else None
            cur = db.execute(
                "INSERT INTO outbound (message_id, action, payload, transaction_id)"
                " VALUES (?, ?, ?, ?)",
                (message_id, action, json.dumps(payload), tx_id),
            )
            if transaction is not None:
                tid, evse_id, connector_id, next_seq, token, ended = transaction
                db.execute(
                    "INSERT INTO transactions VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE"
                    " SET evse_id=COALESCE(excluded.evse_id, evse_id),"
                    " connector_id=COALESCE(excluded.connector_id, connector_id),"
                    " next_seq_no=excluded.next_seq_no,"
                    " id_token=COALESCE(excluded.id_token, id_token), ended=excluded.ended",
                    (tid, evse_id, connector_id, next_seq, token, int(ended)),
                )
            return int(cur.lastrowid or 0)

    def queued(self) -> list[QueuedMessage]:
        rows = self.db.execute(
            "SELECT id, message_id, action, payload, sent, attempts FROM outbound ORDER BY id"
        ).fetchall()
        return [QueuedMessage(r[0], r[1], r[2], json.loads(r[3]), bool(r[4]), r[5]) for r in rows]

    def queue_length(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM outbound").fetchone()[0])

    def mark_sent(self, row_id: int) -> None:
        with self.transaction() as db:
            db.execute("UPDATE outbound SET sent=1 WHERE id=?", (row_id,))

    def count_attempt(self, row_id: int) -> None:
        with self.transaction() as db:
            db.execute("UPDATE outbound SET attempts=attempts+1 WHERE id=?", (row_id,))

    def dequeue(self, row_id: int) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM outbound WHERE id=?", (row_id,))

    def mark_unsent_offline(self) -> None:
        """E11.FR.07: messages still waiting when the station goes offline carry
        offline=true. Messages already sent once keep their first form."""
        with self.transaction() as db:
            rows = db.execute("SELECT id, payload FROM outbound WHERE sent=0").fetchall()
            for row_id, text in rows:
                payload = json.loads(text)
                if payload.get("offline") is not True and "seqNo" in payload:
                    payload["offline"] = True
                    db.execute(
                        "UPDATE outbound SET payload=? WHERE id=?", (json.dumps(payload), row_id)
                    )

    # -- transactions ------------------------------------------------------------
    def open_transactions(self) -> list[tuple[str, int | None, int | None, int, str | None]]:
        return self.db.execute(
            "SELECT id, evse_id, connector_id, next_seq_no, id_token FROM transactions"
            " WHERE ended=0 ORDER BY rowid"
        ).fetchall()

    def prune_transactions(self) -> None:
        """Forget ended transactions whose messages all reached the CSMS."""
        with self.transaction() as db:
            db.execute(
                "DELETE FROM transactions WHERE ended=1 AND id NOT IN"
                " (SELECT transaction_id FROM outbound WHERE transaction_id IS NOT NULL)"
            )
