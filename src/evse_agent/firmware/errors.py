"""BundleError: why a firmware bundle or signature must not be installed."""

from __future__ import annotations

KINDS = ("Malformed", "InvalidCertificate", "InvalidSignature", "HashMismatch",
         "Incompatible", "Downgrade", "DevelopmentSigned")


class BundleError(Exception):
    """`kind` is one of KINDS; the message is one line a person can act on."""

    def __init__(self, kind: str, message: str) -> None:
        assert kind in KINDS, kind
        super().__init__(message)
        self.kind = kind

    def __str__(self) -> str:
        return " ".join(super().__str__().split())
