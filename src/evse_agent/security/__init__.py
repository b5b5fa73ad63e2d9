"""Security: the station's key store, its certificate store and the security event log.

The agent opens one `Security` at start-up (`open_security`) and hands it to the OCPP
adapters and the connection. Nothing here imports `cryptography` at import time: the
X.509 work (security/x509util.py) is loaded the first time a key or certificate is
actually used, so a station without certificates starts as fast as before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from .certificates import CertificateStore
from .keystore import FileKeyStore, KeyStore

if TYPE_CHECKING:
    from ..config import Config
    from ..storage import Storage
    from .events import SecurityEventLog

__all__ = ["CertificateStore", "FileKeyStore", "KeyStore", "Security", "open_security"]


@dataclass
class Security:
    keys: KeyStore
    certificates: CertificateStore
    events: SecurityEventLog


def open_security(cfg: Config, storage: Storage, now: Callable[[], datetime]) -> Security:
    """The station's security objects, all kept under `cfg.data_dir`."""
    from .events import SecurityEventLog

    return Security(
        keys=FileKeyStore(cfg.data_dir / "keys"),
        certificates=CertificateStore(cfg.data_dir / "certs"),
        events=SecurityEventLog(storage, now),
    )
