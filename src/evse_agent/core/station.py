"""The station's behaviour, sans-I/O: events and a clock in, actions out.

`Station.handle(event, now)` is the only entry point. Authorization (card first or
plug first), transaction start and stop points (TxCtrlr), meter sampling
(SampledDataCtrlr, AlignedDataCtrlr), connector status and contactor / pilot control
all live here; the OCPP adapters turn the actions into messages, the agent turns them
into HAL commands. Requirement ids refer to OCPP 2.0.1 Part 2.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from evse_hal.interfaces import ContactorChanged, DeviceFault, PilotChanged, TokenPresented

from ..device_model.model import DeviceModel
from . import messages as m
from .display import display_text
from .evse import REQUESTING, Evse, Transaction
from .metering import sample
from .remote import RemoteControl, RequestResult

NO_AUTH = m.IdToken("", "NoAuthorization")


class Station(RemoteControl):
    def __init__(
        self,
        evse_count: int,
        settings: DeviceModel,
        new_transaction_id: Callable[[], str],
        inoperative: set[int] | None = None,
        max_current_a: float = 32.0,
    ) -> None:
        self.settings = settings
        self.evses = {i: Evse(i, max_current_a=max_current_a) for i in range(1, evse_count + 1)}
        for evse_id in inoperative or set():
            if evse_id in self.evses:
                self.evses[evse_id].operative = False
        self.online = False
        self.accepted_once = False  # the CSMS has accepted this station since start-up
        self.pending_reset = False
        self._new_tx_id = new_transaction_id
        self._auth_requests: dict[int, tuple[m.IdToken, int | None, int | None]] = {}
        self._next_request_id = 1
        self._next_aligned: datetime | None = None
        self._shown = ""
        self.last_result: RequestResult | None = None

    # -- entry point -------------------------------------------------------------
    def handle(self, event: m.Event, now: datetime) -> list[m.Action]:
        out: list[m.Action] = []
        self.last_result = None
        match event:
            case TokenPresented():
                self._token_presented(m.IdToken(event.id_token, event.type), now, out)
            case PilotChanged(evse_id=evse_id, state=state) if evse_id in self.evses:
                e = self.evses[evse_id]
                self._pilot_changed(e, state, now, out)
            case ContactorChanged():
                pass  # feedback supervision (weld detection) belongs to the HAL issue
            case DeviceFault(evse_id=evse_id) if evse_id in self.evses or evse_id == 0:
                self._fault(event, now, out)
            case m.MeterSampled(evse_id=evse_id) if evse_id in self.evses:
                self.evses[evse_id].reading = event.reading
            case m.ConnectionChanged(online=online):
                self.online = online
                self.accepted_once = self.accepted_once or online
            case m.AuthorizeResult():
                self._authorize_result(event, now, out)
            case m.TransactionResponse():
                self._transaction_response(event, now, out)
            case m.ContractPresented(evse_id=evse_id) if evse_id in self.evses:
                self._token_presented(event.id_token, now, out, self.evses[evse_id])
            case m.RemoteStart():
                self._remote_start(event, now, out)
            case m.RemoteStop():
                self._remote_stop(event, now, out)
            case m.ChangeAvailability():
                self._change_availability(event, now, out)
            case m.ResetRequested():
                self._reset(event, now, out)
            case m.TriggerTransactionEvent():
                self._trigger_transaction_event(event, now, out)
            case m.TriggerMeterValues():
                self._trigger_meter_values(event, now, out)
            case m.RecoveredTransaction():
                self._recovered(event, now, out)
            case m.Tick():
                pass
        self._timers(now, out)
        for e in self.evses.values():
            self._evaluate(e, now, out)
        self._after(now, out)
        return out

    def next_wakeup(self, now: datetime) -> datetime | None:
        """When the core next needs a Tick (None: only events can change anything)."""
        times = [self._aligned_due(now)]
        for e in self.evses.values():
            times.append(e.auth_deadline)
            if e.tx is not None:
                times.append(e.tx.next_sample)
        due = [t for t in times if t is not None]
        return min(due) if due else None

    def transaction_ids(self) -> dict[int, str]:
        return {i: e.tx.id for i, e in self.evses.items() if e.tx is not None}

    # -- settings ----------------------------------------------------------------
    def _setting(self, component: str, variable: str, instance: str | None = None) -> object:
        return self.settings.get(component, variable, instance)

    # -- authorization -----------------------------------------------------------
    def _token_presented(
        self, token: m.IdToken, now: datetime, out: list[m.Action], at: Evse | None = None
    ) -> None:
        """A card at the reader, or (`at`) a contract the EV on that EVSE presented
        (C07: the EV's own session; an EVSE already authorized keeps its driver)."""
        if at is not None:
            if at.auth is not None or not at.available:
                return
            target: Evse | None = at
        else:
            # C01.FR.03 / E07: the token that authorized a session ends it without asking.
            for e in self.evses.values():
                if e.auth == token:
                    self._deauthorize(e, ("StopAuthorized", "Local"))
                    out.append(m.Log("local stop", {"evse": e.id, "idToken": token.id_token}))
                    return
            target = self._evse_for_new_token()
        if target is None:
            out.append(m.ShowText("No charge point free"))
            return
        if not self._setting("AuthCtrlr", "Enabled"):
            self._authorize(target, token, now, None)
            return
        self._ask_csms(token, target.id, None, now, out)

    def _ask_csms(
        self, token: m.IdToken, evse_id: int | None, remote_id: int | None, now: datetime,
        out: list[m.Action],
    ) -> None:
        request_id = self._next_request_id
        self._next_request_id += 1
        self._auth_requests[request_id] = (token, evse_id, remote_id)
        if self.online:
            out.append(m.SendAuthorize(request_id, token))
            out.append(m.ShowText("Authorizing..."))
        else:
            self._authorize_result(m.AuthorizeResult(request_id, token, None), now, out)

    def _authorize_result(self, ev: m.AuthorizeResult, now: datetime, out: list[m.Action]) -> None:
        pending = self._auth_requests.pop(ev.request_id, None)
        if pending is None:
            return
        token, evse_id, remote_id = pending
        status = ev.status
        if (status is None and token.type == "eMAID"
                and not self._setting("ISO15118Ctrlr", "ContractValidationOffline")):
            status = "Invalid"  # C07.FR.07: no contract charging offline unless allowed
        if status is None and self._setting("AuthCtrlr", "OfflineTxForUnknownIdEnabled"):
            status = "Accepted"  # C15.FR.08
        e = self.evses.get(evse_id) if evse_id else self._evse_for_new_token()
        if status != "Accepted" or e is None or (ev.evse_ids and e.id not in ev.evse_ids):
            out.append(m.ShowText("Card not accepted"))
            out.append(m.Log("authorization refused", {"status": status}))
            self._shown = ""
            return
        self._authorize(e, token, now, remote_id)

    def _authorize(self, e: Evse, token: m.IdToken, now: datetime, remote_id: int | None) -> None:
        e.auth = token
        e.remote_start_id = remote_id
        e.stop_trigger = None
        if not e.plugged:
            timeout = int(self._setting("TxCtrlr", "EVConnectionTimeOut"))
            e.auth_deadline = now + timedelta(seconds=timeout)
        if e.tx is not None:
            e.tx.id_token_reported = False
            e.tx.remote_start_reported = remote_id is None

    def _deauthorize(self, e: Evse, trigger: tuple[str, str]) -> None:
        e.auth = None
        e.auth_deadline = None
        e.stop_trigger = trigger

    def _evse_for_new_token(self) -> Evse | None:
        """Plug first: the EVSE with an EV waiting. Card first: the first free one."""
        for e in self.evses.values():
            if e.plugged and e.auth is None and e.available:
                return e
        for e in self.evses.values():
            if e.free:
                return e
        return None

    def _transaction_response(
        self, ev: m.TransactionResponse, now: datetime, out: list[m.Action]
    ) -> None:
        for e in self.evses.values():
            if e.tx is not None and e.tx.id == ev.transaction_id and e.auth is not None:
                if ev.status != "Accepted" and self._setting("TxCtrlr", "StopTxOnInvalidId"):
                    self._deauthorize(e, ("Deauthorized", "DeAuthorized"))  # C15.FR.03/04

    # -- hardware ----------------------------------------------------------------
    def _pilot_changed(self, e: Evse, state: str, now: datetime, out: list[m.Action]) -> None:
        was_plugged = e.plugged
        e.pilot = state
        if e.plugged and not was_plugged:
            e.just_plugged = True
            self._move_card_first_auth(e)
            if e.auth is None and not self._setting("AuthCtrlr", "Enabled"):
                self._authorize(e, NO_AUTH, now, None)
            e.auth_deadline = None
        if not e.plugged and was_plugged:
            if e.tx is not None and e.stop_trigger is None:
                e.stop_trigger = ("EVCommunicationLost", "EVDisconnected")
            if e.tx is None or self._setting("TxCtrlr", "StopTxOnEVSideDisconnect"):
                e.auth = None  # the session is over for this driver
        if e.tx is not None and state in REQUESTING:
            e.tx.ev_has_drawn = True

    def _move_card_first_auth(self, plugged: Evse) -> None:
        """A driver tapped before plugging and the card went to the first free EVSE;
        the EV arrived at another free one: the authorization follows the EV."""
        if plugged.auth is not None or not plugged.available:
            return
        for e in self.evses.values():
            if e is not plugged and e.auth is not None and not e.plugged and e.tx is None:
                plugged.auth, e.auth = e.auth, None
                plugged.remote_start_id, e.remote_start_id = e.remote_start_id, None
                e.auth_deadline = None
                return

    def _fault(self, ev: DeviceFault, now: datetime, out: list[m.Action]) -> None:
        targets = self.evses.values() if ev.evse_id == 0 else [self.evses[ev.evse_id]]
        # A reader gone does not stop charging; a meter or contactor fault does.
        if ev.device in ("rfid", "display"):
            return
        for e in targets:
            if ev.active:
                e.faults.add(f"{ev.device}:{ev.fault}")
                if ev.device == "meter":
                    # The last register is history now: sending it again with a new
                    # timestamp would make up energy; none until the meter answers.
                    e.reading = None
            else:
                # Only this fault clears: a device may have several at once (a CAN
                # module's pilot error flags beside a lost heartbeat).
                e.faults.discard(f"{ev.device}:{ev.fault}")

    # -- timers ------------------------------------------------------------------
    def _timers(self, now: datetime, out: list[m.Action]) -> None:
        for e in self.evses.values():
            if e.auth_deadline is not None and now >= e.auth_deadline and not e.plugged:
                out.append(m.Log("EV connection timeout", {"evse": e.id}))
                self._deauthorize(e, ("EVConnectTimeout", "Timeout"))  # E03.FR.05
            if e.tx is not None and e.tx.next_sample is not None and now >= e.tx.next_sample:
                interval = int(self._setting("SampledDataCtrlr", "TxUpdatedInterval"))
                e.tx.next_sample = now + timedelta(seconds=interval) if interval > 0 else None
                self._emit(e, "Updated", "MeterValuePeriodic", now, out, context="Sample.Periodic")
        due = self._aligned_due(now)
        if due is not None and now >= due:
            self._next_aligned = None
            self._aligned(now, out)

    def _aligned_due(self, now: datetime) -> datetime | None:
        interval = int(self._setting("AlignedDataCtrlr", "Interval"))
        if interval <= 0 or not self._setting("AlignedDataCtrlr", "Enabled"):
            return None
        if self._next_aligned is None:
            midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
            elapsed = (now - midnight).total_seconds()
            self._next_aligned = midnight + timedelta(seconds=(elapsed // interval + 1) * interval)
        return self._next_aligned

    def _aligned(self, now: datetime, out: list[m.Action]) -> None:
        measurands = self.settings.members("AlignedDataCtrlr", "Measurands")
        for e in self.evses.values():
            if e.tx is not None:
                self._emit(e, "Updated", "MeterValueClock", now, out, context="Sample.Clock")
            else:
                mv = sample(e.reading, measurands, "Sample.Clock", now, e.offered_a)
                if mv is not None:
                    out.append(m.SendMeterValues(e.id, (mv,)))

    # -- the rules ---------------------------------------------------------------
    def _stop_points(self) -> list[str]:
        return self.settings.members("TxCtrlr", "TxStopPoint")

    def _conditions(self, e: Evse) -> dict[str, bool]:
        authorized = e.auth is not None
        return {
            "EVConnected": e.plugged,
            "Authorized": authorized,
            "PowerPathClosed": e.plugged and authorized,
            "EnergyTransfer": e.contactor_closed and e.pilot in REQUESTING,
        }

    def _evaluate(self, e: Evse, now: datetime, out: list[m.Action]) -> None:
        cond = self._conditions(e)
        # E01: the first start point that holds starts a transaction.
        may_start = self.accepted_once or self._setting("TxCtrlr", "TxBeforeAcceptedEnabled")
        if e.tx is None and e.stop_trigger is None and e.available and may_start:
            points = self.settings.members("TxCtrlr", "TxStartPoint")
            started_by = [p for p in points if cond.get(p)]
            if started_by:
                self._start_transaction(e, started_by[0], now, out)
        if e.tx is not None:
            e.tx.reached.update(p for p, ok in cond.items() if ok)
        self._control(e, out)
        if e.tx is not None:
            # E06: the transaction ends when the first reached stop point stops holding.
            ended = [p for p in self._stop_points() if p in e.tx.reached and not cond.get(p)]
            if ended or (e.stop_trigger and e.stop_trigger[0] == "ResetCommand"):
                trigger, reason = e.stop_trigger or self._default_stop(ended[0])
                self._end_transaction(e, trigger, reason, now, out)
            elif e.charging_state() != e.tx.charging_state:
                trigger = e.stop_trigger[0] if e.stop_trigger else "ChargingStateChanged"
                if trigger in ("EVCommunicationLost", "EVConnectTimeout"):
                    trigger = "ChargingStateChanged"
                self._emit(e, "Updated", trigger, now, out)
            elif e.tx.evse_reported is False and e.plugged:
                self._emit(e, "Updated", "CablePluggedIn", now, out)
            elif not e.tx.id_token_reported and e.auth not in (None, NO_AUTH):
                self._emit(e, "Updated", "Authorized", now, out)
        if e.tx is None and e.stop_trigger is not None and not e.plugged:
            e.stop_trigger = None  # session over: the next driver starts afresh
        if e.tx is None and e.pending_inoperative:
            e.operative, e.pending_inoperative = False, None
        e.just_plugged = False
        status = e.connector_status()
        if status != e.reported_status:
            e.reported_status = status
            out.append(m.ConnectorStatus(e.id, e.connector_id, status, now))

    @staticmethod
    def _default_stop(point: str) -> tuple[str, str]:
        return {
            "EVConnected": ("EVCommunicationLost", "EVDisconnected"),
            "Authorized": ("StopAuthorized", "Local"),
            "PowerPathClosed": ("EVCommunicationLost", "EVDisconnected"),
            "EnergyTransfer": ("ChargingStateChanged", "StoppedByEV"),
        }[point]

    def _control(self, e: Evse, out: list[m.Action]) -> None:
        """Offer current and close the contactor only for an authorized, plugged EV on
        a usable EVSE (C01.FR.01); the contactor follows the EV's request (state C)."""
        may_charge = e.plugged and e.auth is not None and e.available
        offer = e.max_current_a if may_charge else 0.0
        if offer != e.offered_a:
            e.offered_a = offer
            out.append(m.OfferCurrent(e.id, offer))
        close = may_charge and e.pilot in REQUESTING
        if close != e.contactor_closed:
            e.contactor_closed = close
            out.append(m.CloseContactor(e.id) if close else m.OpenContactor(e.id))

    def _start_transaction(self, e: Evse, point: str, now: datetime, out: list[m.Action]) -> None:
        trigger = {
            "EVConnected": "CablePluggedIn",
            "Authorized": "RemoteStart" if e.remote_start_id is not None else "Authorized",
            "PowerPathClosed": "CablePluggedIn" if e.just_plugged else "Authorized",
            "EnergyTransfer": "ChargingStateChanged",
        }[point]
        if point == "PowerPathClosed" and e.remote_start_id is not None:
            trigger = "RemoteStart"
        e.tx = Transaction(self._new_tx_id(), now)
        e.auth_deadline = None if e.plugged else e.auth_deadline
        interval = int(self._setting("SampledDataCtrlr", "TxUpdatedInterval"))
        e.tx.next_sample = now + timedelta(seconds=interval) if interval > 0 else None
        e.tx.remote_start_reported = e.remote_start_id is None
        self._emit(e, "Started", trigger, now, out, context="Transaction.Begin")

    def _end_transaction(
        self, e: Evse, trigger: str, reason: str, now: datetime, out: list[m.Action]
    ) -> None:
        self._emit(e, "Ended", trigger, now, out, context="Transaction.End", reason=reason)
        e.tx = None
        e.stop_trigger = (trigger, reason) if e.plugged else None
        if e.auth is not None and reason not in ("EVDisconnected",):
            e.auth = None
        self._control(e, out)

    def _emit(
        self, e: Evse, event_type: str, trigger: str, now: datetime, out: list[m.Action],
        context: str = "Sample.Periodic", reason: str | None = None,
    ) -> None:
        tx = e.tx
        assert tx is not None
        measurands = {
            "Transaction.Begin": ("SampledDataCtrlr", "TxStartedMeasurands"),
            "Transaction.End": ("SampledDataCtrlr", "TxEndedMeasurands"),
            "Sample.Clock": ("AlignedDataCtrlr", "Measurands"),
        }.get(context, ("SampledDataCtrlr", "TxUpdatedMeasurands"))
        mv = sample(e.reading, self.settings.members(*measurands), context, now, e.offered_a)
        include_evse = e.plugged or len(self.evses) == 1
        token = None
        if e.auth not in (None, NO_AUTH) and not tx.id_token_reported:
            token, tx.id_token_reported = e.auth, True  # E01.FR.10: once authorized
        remote_id = None
        if not tx.remote_start_reported and e.remote_start_id is not None:
            remote_id, tx.remote_start_reported = e.remote_start_id, True
        state = "Idle" if event_type == "Ended" and not e.plugged else e.charging_state()
        tx.charging_state = state
        if include_evse:
            tx.evse_reported = True
        out.append(
            m.TransactionEventAction(
                event_type=event_type,
                timestamp=now,
                trigger_reason=trigger,
                seq_no=tx.take_seq_no(),
                transaction_id=tx.id,
                offline=not self.online,
                evse_id=e.id if include_evse else None,
                connector_id=e.connector_id if include_evse else None,
                charging_state=state,
                stopped_reason=reason,
                id_token=token,
                remote_start_id=remote_id,
                meter_values=(mv,) if mv else (),
            )
        )

    def _after(self, now: datetime, out: list[m.Action]) -> None:
        text = display_text(self.evses.values())
        if text != self._shown:
            self._shown = text
            out.append(m.ShowText(text))
        if self.pending_reset and all(e.tx is None for e in self.evses.values()):
            self.pending_reset = False
            out.append(m.RestartStation())
