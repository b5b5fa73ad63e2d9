"""The 1.6 side of each transaction, kept in SQLite (the kv table) so that a restart
loses none of it.

The core names a transaction with its own id (a UUID) from the first moment, online
or not; in 1.6 the CSMS assigns an integer in StartTransaction.conf (§4.8). Queued
MeterValues and StopTransaction therefore carry the local id and get the CSMS's integer
only when they are sent: a transaction that started offline is replayed with the id
the CSMS gave it when its StartTransaction finally got through. When StartTransaction
was never answered (the outbox gave up after TransactionMessageAttempts), the later
messages say transactionId -1 (errata 3.18).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..storage import Storage

KEY = "ocpp16.transactions"
UNKNOWN_ID = -1  # errata 3.18: no transactionId was ever received


@dataclass
class Record16:
    start_message_id: str  # the queued StartTransaction.req
    connector_id: int
    id_tag: str
    meter_start: int
    begin: list[dict[str, Any]] = field(default_factory=list)  # Transaction.Begin samples
    transaction_id: int | None = None  # from StartTransaction.conf


class Transactions16:
    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        raw: dict[str, dict[str, Any]] = storage.get(KEY, {})
        self._records = {local: Record16(**fields) for local, fields in raw.items()}

    def _save(self) -> None:
        self._storage.put(KEY, {local: asdict(r) for local, r in self._records.items()})

    def add(self, local_id: str, record: Record16) -> None:
        """Written before its StartTransaction is queued: an answer always finds it."""
        self._records[local_id] = record
        self._save()

    def get(self, local_id: str) -> Record16 | None:
        return self._records.get(local_id)

    def assign(self, start_message_id: str, transaction_id: int) -> str | None:
        """StartTransaction.conf arrived: remember the CSMS's id (durably, before the
        outbox forgets the request). Returns the local id."""
        local = self.local_for_start(start_message_id)
        if local is not None:
            self._records[local].transaction_id = transaction_id
            self._save()
        return local

    def local_for_start(self, start_message_id: str) -> str | None:
        for local, r in self._records.items():
            if r.start_message_id == start_message_id:
                return local
        return None

    def csms_id(self, local_id: str) -> int | None:
        r = self._records.get(local_id)
        return r.transaction_id if r is not None else None

    def local_id(self, transaction_id: int) -> str | None:
        for local, r in self._records.items():
            if r.transaction_id == transaction_id:
                return local
        return None

    def forget(self, local_id: str) -> None:
        if self._records.pop(local_id, None) is not None:
            self._save()

    def prune(self, keep: set[str]) -> None:
        """Forget what no open transaction and no queued message refers to any more
        (a StopTransaction given up after TransactionMessageAttempts, a crash between
        writing a record and queueing its StartTransaction)."""
        stale = [local for local in self._records if local not in keep]
        for local in stale:
            del self._records[local]
        if stale:
            self._save()

    def resolve(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The payload as sent: a local (str) transactionId becomes the CSMS's integer,
        or -1 when the CSMS never assigned one."""
        local = payload.get("transactionId")
        if not isinstance(local, str):
            return payload
        assigned = self.csms_id(local)
        return {**payload, "transactionId": UNKNOWN_ID if assigned is None else assigned}
