"""Firmware verification throughput beside `sha256sum`, and peak RSS while downloading.

    .venv/bin/python bench/firmware.py [--size-mb 500] [--repeat 3] [--dir /tmp] [--json]

1. A bundle with one random payload of --size-mb MB is built (development key) in a
   temporary directory under --dir. Then, alternating, --repeat times each:
   `sha256sum FILE` (a subprocess, wall time), `verify_bundle` and
   `verify_ocpp_signature` (in this process, as the station runs them), and, for
   reference, `openssl dgst -sha256` (OpenSSL's SHA-256, the code hashlib uses). The file is
   read once first, so every run reads from the page cache: the figures compare
   hashing and parsing, not the disk. Best run of each; the ratio to sha256sum is the
   figure the target (>= 80 %) is about.
2. Peak RSS while downloading that bundle with the station's downloader
   (evse_agent.firmware.download over http from a local aiohttp server in another
   process), then verifying it: a fresh child process imports everything it needs,
   waits for its RSS to settle (idle), resets its peak (`echo 5 > /proc/self/clear_refs`),
   downloads, reads the peak (`VmHWM`); a sampling thread (every 5 ms, `VmRSS`)
   cross-checks. Target: under 10 MB above idle.

Linux only (reads /proc). Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

MB = 1_000_000


def status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def make_bundle(directory: Path, size_mb: int) -> Path:
    from evse_agent.firmware import bundle, signatures

    payload = directory / "rootfs.img"
    block = os.urandom(1 << 20)
    with open(payload, "wb") as out:
        remaining = size_mb * MB
        while remaining:
            # Fresh random bytes every 64 MiB: no 1 MiB period a cache could exploit.
            if out.tell() % (64 << 20) == 0:
                block = os.urandom(1 << 20)
            n = min(remaining, len(block))
            out.write(block[:n])
            remaining -= n
    key = signatures.load_private_key(
        signatures.dev_path(signatures.DEV_SIGNING_KEY).read_bytes(), "dev key")
    chain = signatures.dev_path(signatures.DEV_SIGNING_CERT).read_text()
    path = directory / "firmware.bundle"
    bundle.build(path, version="9.9.9", payloads=[payload], key=key, chain_pem=chain,
                 hardware=["bench"])
    payload.unlink()
    return path


def timed(run: Any) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def throughput(path: Path, repeat: int) -> dict[str, Any]:
    import base64

    from evse_agent.firmware import bundle, signatures

    size = path.stat().st_size
    key = signatures.load_private_key(
        signatures.dev_path(signatures.DEV_SIGNING_KEY).read_bytes(), "dev key")
    cert = signatures.dev_path(signatures.DEV_SIGNING_CERT).read_text()
    signature = base64.b64encode(
        signatures.sign_digest(key, signatures.file_sha256(path))).decode()  # warms cache

    def sha256sum() -> None:
        subprocess.run(["sha256sum", str(path)], check=True, stdout=subprocess.DEVNULL)

    def openssl() -> None:
        subprocess.run(["openssl", "dgst", "-sha256", str(path)], check=True,
                       stdout=subprocess.DEVNULL)

    def verify() -> None:
        bundle.verify_bundle(path, [], hardware_id="bench", current_version="1.0",
                             production=False)

    def ocpp() -> None:
        bundle.verify_ocpp_signature(path, cert, signature, [], production=False)

    runs = [("sha256sum", sha256sum), ("verify_bundle", verify),
            ("verify_ocpp_signature", ocpp)]
    if shutil.which("openssl"):
        runs.append(("openssl dgst -sha256", openssl))
    series: dict[str, list[float]] = {name: [] for name, _ in runs}
    for _ in range(repeat):
        for name, run in runs:
            series[name].append(timed(run))
    result: dict[str, Any] = {"bytes": size}
    for name, times in series.items():
        result[name] = {"best_s": min(times), "mb_s": size / MB / min(times),
                        "runs_s": times}
    base = result["sha256sum"]["mb_s"]
    for name in series:
        if name == "sha256sum":
            continue
        result[name]["vs_sha256sum"] = result[name]["mb_s"] / base
    return result


# -- download RSS ----------------------------------------------------------------------
def serve(directory: str, port: int) -> None:
    """Child: an aiohttp static file server (Range support included)."""
    from aiohttp import web

    app = web.Application()
    app.router.add_static("/", directory)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def download_child(url: str, dest: str) -> None:
    """Child: idle RSS, then peak RSS during download and during verification."""
    import gc

    import aiohttp  # noqa: F401 - loaded before the idle figure, as in a running agent
    import cryptography.x509  # noqa: F401

    from evse_agent.firmware import bundle
    from evse_agent.firmware.download import download

    peak_sampled = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak_sampled
        while not stop.is_set():
            peak_sampled = max(peak_sampled, status_kib("VmRSS"))
            time.sleep(0.005)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    async def warm() -> None:  # what an agent has done before: a loop, a session
        async with aiohttp.ClientSession() as session:
            await session.close()

    loop.run_until_complete(warm())
    gc.collect()
    time.sleep(0.3)
    idle = status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # peak RSS := current RSS
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    got = loop.run_until_complete(download(url, Path(dest)))
    seconds = time.perf_counter() - start
    peak_download = status_kib("VmHWM")
    sampled_download = peak_sampled
    Path("/proc/self/clear_refs").write_text("5")
    bundle.verify_bundle(Path(dest), [], hardware_id="bench", current_version="1.0",
                         production=False)
    peak_verify = status_kib("VmHWM")
    stop.set()
    sampler.join()
    print(json.dumps({
        "bytes": got.size, "download_s": seconds, "idle_kib": idle,
        "peak_download_kib": peak_download, "sampled_download_kib": sampled_download,
        "peak_verify_kib": peak_verify, "sampled_any_kib": peak_sampled,
    }))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def download_rss(path: Path) -> dict[str, Any]:
    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(path.parent),
                               str(port)])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        dest = path.with_name("downloaded.bundle")
        out = subprocess.run([sys.executable, __file__, "--download-child",
                              f"http://127.0.0.1:{port}/{path.name}", str(dest)],
                             check=True, capture_output=True, text=True)
        dest.unlink(missing_ok=True)
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        server.terminate()
        server.wait(10)
    idle = result["idle_kib"]
    result["above_idle_download_mib"] = (result["peak_download_kib"] - idle) / 1024
    result["above_idle_download_sampled_mib"] = (result["sampled_download_kib"] - idle) / 1024
    result["above_idle_verify_mib"] = (result["peak_verify_kib"] - idle) / 1024
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default="/tmp")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--download-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return 0
    if args.download_child:
        download_child(*args.download_child)
        return 0
    if shutil.which("sha256sum") is None:
        print("sha256sum not found", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="evse-fw-bench-", dir=args.dir) as tmp:
        path = make_bundle(Path(tmp), args.size_mb)
        speed = throughput(path, args.repeat)
        rss = download_rss(path)
    if args.json:
        print(json.dumps({"throughput": speed, "download": rss}, indent=2))
        return 0
    print(f"bundle: {speed['bytes'] / MB:.0f} MB, best of {args.repeat}, page cache warm")
    print(f"  {'':24} {'MB/s':>8} {'best s':>8} {'vs sha256sum':>13}")
    for name, row in speed.items():
        if name == "bytes":
            continue
        ratio = f"{row['vs_sha256sum']:.0%}" if "vs_sha256sum" in row else "-"
        print(f"  {name:24} {row['mb_s']:8.0f} {row['best_s']:8.2f} {ratio:>13}")
    print("  target: verify_bundle and verify_ocpp_signature >= 80 % of sha256sum")
    print(f"download of {rss['bytes'] / MB:.0f} MB over http (aiohttp server on loopback) "
          f"in {rss['download_s']:.1f} s:")
    print(f"  idle RSS {rss['idle_kib'] / 1024:.1f} MiB; peak above idle: download "
          f"{rss['above_idle_download_mib']:.2f} MiB (VmHWM), "
          f"{rss['above_idle_download_sampled_mib']:.2f} MiB (sampled); "
          f"verify {rss['above_idle_verify_mib']:.2f} MiB")
    print("  target: under 10 MB above idle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
