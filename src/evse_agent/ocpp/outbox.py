"""Delivery of transaction-related messages: from the durable queue, in order, once.

A message is in SQLite before it is sent (the adapter enqueues it); it leaves the
queue only when the CSMS answered it, or after MessageAttempts failures to process it
(E13.FR.04). A resend is byte-for-byte the first copy, with the same message id, so
the CSMS can recognise it. Version-neutral: the adapter says how to send and what to
do with the answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ..storage import QueuedMessage, Storage
from .connection import CallFailed

log = logging.getLogger("evse_agent.ocpp")

Send = Callable[[QueuedMessage], Awaitable[dict[str, Any]]]
Answered = Callable[[QueuedMessage, dict[str, Any]], None]


class Outbox:
    def __init__(
        self,
        storage: Storage,
        attempts: Callable[[], int],
        attempt_interval: Callable[[], float],
    ) -> None:
        self.storage = storage
        self._attempts = attempts
        self._interval = attempt_interval
        self._wake = asyncio.Event()
        self.delivered = 0

    def notify(self) -> None:
        self._wake.set()

    async def drain(self, send: Send, answered: Answered) -> None:
        """Deliver queued messages until the connection drops (CallFailed 'closed'
        propagates to the caller); waits for new ones when the queue is empty."""
        while True:
            queued = self.storage.queued()
            if not queued:
                self._wake.clear()
                await self._wake.wait()
                continue
            msg = queued[0]
            if not msg.sent:
                self.storage.mark_sent(msg.id)
            try:
                response = await send(msg)
            except CallFailed as failure:
                if failure.kind == "closed":
                    raise
                await self._failed(msg, failure)
                continue
            self.storage.dequeue(msg.id)
            self.delivered += 1
            answered(msg, response)

    async def _failed(self, msg: QueuedMessage, failure: CallFailed) -> None:
        attempts = msg.attempts + 1
        self.storage.count_attempt(msg.id)
        limit = max(1, self._attempts())
        if attempts >= limit:
            log.error(
                "%s %s not accepted after %d attempts (%s); discarded (E13.FR.04)",
                msg.action, msg.message_id, attempts, failure,
            )
            self.storage.dequeue(msg.id)
            return
        wait = self._interval() * attempts  # E13.FR.03
        log.warning(
            "%s %s failed (%s); attempt %d of %d in %g s",
            msg.action, msg.message_id, failure, attempts + 1, limit, wait,
        )
        await asyncio.sleep(wait)
