"""The station's private keys behind a small interface, so a TPM or a PKCS#11 token
can replace the file store later (`cryptography` cannot use such keys directly: the
interface never hands a key out, it only uses it).

`FileKeyStore` keeps one PKCS#8 PEM file per key under `data_dir/keys/`, mode 0600 in
a 0700 directory, written atomically (temp file, fsync, rename, fsync of the
directory), so a power cut leaves either the old key or the new one, never half a key.
Keys are encrypted with a passphrase when the service is given one as a systemd
credential:

    # /etc/systemd/system/evse-agent.service.d/key.conf
    [Service]
    LoadCredentialEncrypted=evse-agent-key-passphrase:/etc/credstore.encrypted/evse-agent-key-passphrase

systemd then exposes it as `$CREDENTIALS_DIRECTORY/evse-agent-key-passphrase`
(PASSPHRASE_CREDENTIAL). Without it keys are stored unencrypted, with a warning.
Key material is never logged or printed.

Key names are the certificate uses: "ChargingStationCertificate", "V2GCertificate".
A renewal generates the new key under `pending(name)`; it becomes `name` only when
the CSMS's signed certificate for it was accepted (`promote`), the key it replaces is
kept as `previous(name)` until then and after, for a fallback.
"""

from __future__ import annotations

import logging
import os
import ssl
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger("evse_agent.security")

PASSPHRASE_CREDENTIAL = "evse-agent-key-passphrase"
DEFAULT_KEY_TYPE = "ec"  # EC P-256 (secp256r1): what OCPP and TLS 1.2 suites expect
KEY_TYPES = ("ec", "rsa")


class KeyStoreError(Exception):
    """A key cannot be used (missing, wrong passphrase, unreadable): one line."""


def pending(name: str) -> str:
    return f"{name}.pending"


def previous(name: str) -> str:
    return f"{name}.previous"


class KeyStore(Protocol):
    """What the station does with its private keys; the keys themselves stay inside."""

    def has_key(self, name: str) -> bool: ...

    def generate(self, name: str) -> None:
        """A new key pair under `name` (replacing any key of that name)."""

    def csr(self, name: str, common_name: str, organization: str) -> str:
        """A PEM PKCS#10 request signed by key `name`, subject CN and O."""

    def public_key_matches(self, name: str, certificate_pem: str) -> bool:
        """The (first) certificate in `certificate_pem` carries key `name`'s public key."""

    def sign(self, name: str, data: bytes) -> bytes:
        """A signature of `data` (ECDSA with SHA-256, or RSA PKCS#1 v1.5 SHA-256)."""

    def load_into(self, ctx: ssl.SSLContext, name: str, chain_pem: str) -> None:
        """Client certificate chain + private key `name` into `ctx` (profile 3)."""

    def promote(self, name: str) -> None:
        """`pending(name)` becomes `name`; the old `name` is kept as `previous(name)`."""

    def encrypted(self, name: str) -> bool:
        """Whether key `name` is stored encrypted at rest."""


def read_passphrase(env: Mapping[str, str] | None = None) -> bytes | None:
    """The passphrase systemd hands the service as credential PASSPHRASE_CREDENTIAL,
    or None (no credentials directory, or no such credential)."""
    env = os.environ if env is None else env
    directory = env.get("CREDENTIALS_DIRECTORY")
    if not directory:
        return None
    path = Path(directory) / PASSPHRASE_CREDENTIAL
    try:
        secret = path.read_bytes().rstrip(b"\r\n")
    except FileNotFoundError:
        return None
    except OSError as err:
        raise KeyStoreError(f"{path}: cannot read the key passphrase: {err.strerror}") from None
    if not secret:
        raise KeyStoreError(f"{path}: the key passphrase credential is empty")
    return secret


def write_atomically(path: Path, data: bytes, mode: int = 0o600) -> None:
    """`path` holds `data` or its old content after any crash; never a mix."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)  # before any byte is written
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileKeyStore:
    """PKCS#8 PEM files under `directory` (data_dir/keys)."""

    def __init__(
        self,
        directory: Path,
        passphrase: bytes | None = None,
        key_type: str = DEFAULT_KEY_TYPE,
        *,
        use_credential: bool = True,
    ) -> None:
        if key_type not in KEY_TYPES:
            raise ValueError(f"key type must be one of {KEY_TYPES}, not {key_type!r}")
        self.directory = directory
        self.key_type = key_type
        self._passphrase = passphrase
        self._credential_checked = passphrase is not None or not use_credential
        self._cache: dict[str, Any] = {}  # name -> loaded private key (PBKDF2 is slow)

    @property
    def passphrase(self) -> bytes | None:
        if not self._credential_checked:
            self._passphrase = read_passphrase()
            self._credential_checked = True
        return self._passphrase

    def path(self, name: str) -> Path:
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"bad key name {name!r}")
        return self.directory / f"{name}.key.pem"

    # -- KeyStore ---------------------------------------------------------------------
    def has_key(self, name: str) -> bool:
        return self.path(name).is_file()

    def generate(self, name: str) -> None:
        from . import x509util

        key = x509util.new_private_key(self.key_type)
        passphrase = self.passphrase
        if passphrase is None:
            log.warning(
                "key %s stored unencrypted: no %s credential in $CREDENTIALS_DIRECTORY",
                name, PASSPHRASE_CREDENTIAL,
            )
        self._ensure_directory()
        write_atomically(self.path(name), x509util.private_key_pem(key, passphrase))
        self._cache[name] = key
        log.info("generated a new %s key %s", self.key_type.upper(), name)

    def csr(self, name: str, common_name: str, organization: str) -> str:
        from . import x509util

        return x509util.build_csr(self._load(name), common_name, organization)

    def public_key_matches(self, name: str, certificate_pem: str) -> bool:
        from . import x509util

        if not self.has_key(name):
            return False
        return x509util.public_key_matches(self._load(name), certificate_pem)

    def sign(self, name: str, data: bytes) -> bytes:
        from . import x509util

        return x509util.sign(self._load(name), data)

    def load_into(self, ctx: ssl.SSLContext, name: str, chain_pem: str) -> None:
        # ssl reads files only: the chain (public) goes to a temp file; the key file is
        # read in place, decrypted by OpenSSL with the passphrase (never written out).
        passphrase = self.passphrase
        if passphrase is None and self.has_key(name) and self.encrypted(name):
            # OpenSSL would otherwise prompt on the terminal and hang a service.
            raise KeyStoreError(
                f"{self.path(name)}: the key is encrypted but no passphrase credential was given"
            )
        with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=True) as chain:
            chain.write(chain_pem)
            chain.flush()
            try:
                ctx.load_cert_chain(chain.name, self.path(name), password=passphrase)
            except (ssl.SSLError, OSError) as err:
                raise KeyStoreError(
                    f"{self.path(name)}: cannot use key with its certificate: {err}"
                ) from None

    def promote(self, name: str) -> None:
        new = self.path(pending(name))
        if not new.is_file():
            raise KeyStoreError(f"{new}: no pending key")
        current = self.path(name)
        if current.is_file():
            os.replace(current, self.path(previous(name)))
        os.replace(new, current)
        _fsync_dir(self.directory)
        self._cache.pop(previous(name), None)
        if pending(name) in self._cache:
            self._cache[name] = self._cache.pop(pending(name))
        else:
            self._cache.pop(name, None)

    def encrypted(self, name: str) -> bool:
        return b"ENCRYPTED PRIVATE KEY" in self.path(name).read_bytes()[:64]

    def delete(self, name: str) -> None:
        self.path(name).unlink(missing_ok=True)
        self._cache.pop(name, None)

    # -- helpers ------------------------------------------------------------------------
    def _ensure_directory(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.directory, 0o700)

    def _load(self, name: str) -> Any:
        if name in self._cache:
            return self._cache[name]
        from . import x509util

        path = self.path(name)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise KeyStoreError(f"{path}: no such key (generate one first)") from None
        except OSError as err:
            raise KeyStoreError(f"{path}: cannot read key: {err.strerror}") from None
        key = x509util.load_private_key(data, self.passphrase, str(path))
        self._cache[name] = key
        return key
