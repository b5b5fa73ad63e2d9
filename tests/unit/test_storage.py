"""The durable queue: write before send, offline marking (E11.FR.07), migrations."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from evse_agent.storage import MIGRATIONS, Storage


def test_queue_survives_reopen_in_order(tmp_path: Path) -> None:
    db = Storage(tmp_path / "a.db")
    for seq in range(3):
        db.enqueue(f"m{seq}", "TransactionEvent", {"seqNo": seq},
                   ("tx1", 1, 1, seq + 1, None, False))
    db.close()
    again = Storage(tmp_path / "a.db")
    assert [q.payload["seqNo"] for q in again.queued()] == [0, 1, 2]
    assert again.open_transactions() == [("tx1", 1, 1, 3, None)]
    assert sqlite3.connect(tmp_path / "a.db").execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert again.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_only_unsent_messages_are_marked_offline(tmp_path: Path) -> None:
    db = Storage(tmp_path / "a.db")
    first = db.enqueue("m0", "TransactionEvent", {"seqNo": 0})
    db.enqueue("m1", "TransactionEvent", {"seqNo": 1})
    db.mark_sent(first)
    db.mark_unsent_offline()
    sent, unsent = db.queued()
    assert "offline" not in sent.payload  # a resend must equal the first copy
    assert unsent.payload["offline"] is True


def test_ended_transactions_are_pruned_once_delivered(tmp_path: Path) -> None:
    db = Storage(tmp_path / "a.db")
    row = db.enqueue("m0", "TransactionEvent", {"seqNo": 0}, ("tx1", 1, 1, 1, None, True))
    db.prune_transactions()
    assert db.db.execute("SELECT COUNT(*) FROM transactions").fetchone()[0] == 1
    db.dequeue(row)
    db.prune_transactions()
    assert db.db.execute("SELECT COUNT(*) FROM transactions").fetchone()[0] == 0
    assert db.open_transactions() == []
