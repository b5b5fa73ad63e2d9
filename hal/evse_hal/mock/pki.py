"""Test certificates for the simulated ISO 15118 EV and SECC: small real X.509 chains
(root -> sub-CA -> leaf, EC P-256) so the OCSP request data the mock reports is
computed from real certificates, as a real EV-communication module would.

`cryptography` is imported only when a Plug & Charge EV is plugged: a station without
one never loads it. Chains are made once per process and name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from evse_hal.interfaces import OcspRequestData

if TYPE_CHECKING:
    from cryptography import x509

MO_OCSP_URL = "http://ocsp.mo.mock.invalid/"
CPO_OCSP_URL = "http://ocsp.cpo.mock.invalid/"


@dataclass(frozen=True)
class Chain:
    pem: str  # leaf first, then the sub-CA (the root is what the trust store holds)
    root_pem: str
    ocsp_request_data: tuple[OcspRequestData, ...]  # leaf, then sub-CA


@lru_cache(maxsize=32)
def contract_chain(emaid: str) -> Chain:
    """A contract certificate for `emaid` (CN), issued by a mock MO sub-CA."""
    return _chain("Mock MO Root", "Mock MO Sub-CA", emaid, MO_OCSP_URL)


@lru_cache(maxsize=1)
def secc_chain() -> Chain:
    """The mock SECC's own V2G certificate chain (what it staples OCSP data for)."""
    return _chain("Mock V2G Root", "Mock CPO Sub-CA", "MOCKSECC01", CPO_OCSP_URL)


def _chain(root_cn: str, sub_cn: str, leaf_cn: str, ocsp_url: str) -> Chain:
    from cryptography.hazmat.primitives import hashes, serialization

    root_key, root = _certificate(root_cn, None, None, ca=True, ocsp_url=None)
    sub_key, sub = _certificate(sub_cn, root, root_key, ca=True, ocsp_url=ocsp_url)
    _, leaf = _certificate(leaf_cn, sub, sub_key, ca=False, ocsp_url=ocsp_url)
    pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (leaf, sub))
    return Chain(
        pem.decode(),
        root.public_bytes(serialization.Encoding.PEM).decode(),
        (ocsp_data(leaf, sub, hashes.SHA256()), ocsp_data(sub, root, hashes.SHA256())),
    )


def ocsp_data(cert: x509.Certificate, issuer: x509.Certificate, algorithm: Any) -> OcspRequestData:
    """RFC 6960 CertID of `cert`, computed by cryptography's OCSP request builder."""
    from cryptography import x509 as _x509
    from cryptography.x509 import ocsp

    request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, algorithm).build()
    url = ""
    try:
        aia = cert.extensions.get_extension_for_class(_x509.AuthorityInformationAccess).value
        url = next(
            str(d.access_location.value) for d in aia
            if d.access_method == _x509.oid.AuthorityInformationAccessOID.OCSP
        )
    except (_x509.ExtensionNotFound, StopIteration):
        pass
    return OcspRequestData(
        hash_algorithm=algorithm.name.upper(),
        issuer_name_hash=request.issuer_name_hash.hex(),
        issuer_key_hash=request.issuer_key_hash.hex(),
        serial_number=format(request.serial_number, "x"),
        responder_url=url,
    )


def _certificate(
    cn: str, issuer: x509.Certificate | None, issuer_key: Any, *, ca: bool, ocsp_url: str | None
) -> tuple[Any, x509.Certificate]:
    from cryptography import x509 as _x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = _x509.Name([
        _x509.NameAttribute(NameOID.COMMON_NAME, cn),
        _x509.NameAttribute(NameOID.ORGANIZATION_NAME, "evse-agent mock PKI"),
    ])
    now = datetime.now(UTC)
    builder = (
        _x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer is not None else name)
        .public_key(key.public_key())
        .serial_number(_x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(_x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ocsp_url is not None:
        builder = builder.add_extension(
            _x509.AuthorityInformationAccess([_x509.AccessDescription(
                AuthorityInformationAccessOID.OCSP, _x509.UniformResourceIdentifier(ocsp_url)
            )]),
            critical=False,
        )
    signer = issuer_key if issuer_key is not None else key
    return key, builder.sign(signer, hashes.SHA256())
