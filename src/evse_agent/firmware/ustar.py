"""The container under a firmware bundle: an uncompressed ustar stream, written and read
front to back in constant memory (firmware-bundle/FORMAT.md, "Layout").

Only regular-file members are accepted; the standard library decodes each 512-byte
header, the data goes through one reusable buffer into SHA-256 (and a file, if asked).
"""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path
from typing import BinaryIO

from .errors import BundleError
from .signatures import READ_SIZE, sha256_stream

BLOCK = 512


def malformed(message: str) -> BundleError:
    return BundleError("Malformed", message)


def write_header(out: BinaryIO, name: str, size: int, mtime: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode, info.type = size, mtime, 0o644, tarfile.REGTYPE
    info.uname = info.gname = ""
    try:
        out.write(info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "strict"))
    except ValueError:
        raise malformed(f"{name}: too large for a ustar member (8 GiB at most)") from None


def padding(size: int) -> bytes:
    return bytes(-size % BLOCK)


def copy_hashed(stream: BinaryIO, out: BinaryIO | None, limit: int) -> tuple[bytes, int]:
    """Hash (and copy to `out`) the next `limit` bytes of `stream` in constant memory."""
    if out is None:
        return sha256_stream(stream, limit)
    digest = hashlib.sha256()
    view = memoryview(bytearray(READ_SIZE))
    total = 0
    while total < limit:
        n = stream.readinto(view[:min(READ_SIZE, limit - total)])  # type: ignore[attr-defined]
        if not n:
            break
        digest.update(view[:n])
        out.write(view[:n])
        total += n
    return digest.digest(), total


class Reader:
    """Members of a ustar stream, front to back; only regular files are allowed."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream

    def next(self) -> tarfile.TarInfo | None:
        block = self._exact(BLOCK, "a member header")
        try:
            info = tarfile.TarInfo.frombuf(block, "utf-8", "strict")
        except tarfile.EOFHeaderError:
            return None
        except tarfile.HeaderError:
            raise malformed("a damaged tar header (not a firmware bundle?)") from None
        if info.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
            raise malformed(f"member {info.name!r} is not a regular file")
        return info

    def small(self, info: tarfile.TarInfo, expected: str, limit: int) -> bytes:
        if info.name != expected:
            raise malformed(f"member {member_name(info)} where {expected} belongs "
                             "(not a firmware bundle?)")
        if info.size > limit:
            raise malformed(f"{expected} of {info.size} bytes is too large")
        data = self._exact(info.size, expected)
        self._exact(-info.size % BLOCK, expected)
        return data

    def payload(self, info: tarfile.TarInfo, out: BinaryIO | None) -> tuple[bytes, int]:
        digest, size = copy_hashed(self.stream, out, info.size)
        if size != info.size:
            raise malformed(f"the bundle ends inside {info.name} (truncated)")
        self._exact(-size % BLOCK, info.name)
        return digest, size

    def _exact(self, size: int, what: str) -> bytes:
        data = self.stream.read(size)
        while data is not None and len(data) < size:
            more = self.stream.read(size - len(data))
            if not more:
                break
            data += more
        if data is None or len(data) != size:
            raise malformed(f"the bundle ends inside {what} (truncated)")
        return data


def member_name(info: tarfile.TarInfo) -> str:
    return repr(info.name[:80])


def open_bundle(path: Path) -> BinaryIO:
    try:
        return open(path, "rb", buffering=0)  # noqa: SIM115 - closed by the callers
    except OSError as err:
        raise malformed(f"cannot read {path}: {err.strerror or err}") from None
