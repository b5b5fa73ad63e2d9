"""`cryptography` stays out of a station that has no certificate: importing the agent,
building it and running the certificate timers must not load it (start-up time)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sys
from datetime import UTC, datetime
from pathlib import Path
import evse_agent.agent as agent_module
assert not [m for m in sys.modules if m.startswith("cryptography")], "at import"
from evse_agent.config import load
agent = agent_module.Agent(load(Path(sys.argv[1])))
now = datetime.now(UTC)
agent.certificates.tick(now)
agent.certificates.next_wakeup(now)
agent.dm.get("SecurityCtrlr", "CertificateEntries")
loaded = [m for m in sys.modules if m.startswith("cryptography")]
assert not loaded, loaded[:3]
print("lean")
"""


def test_no_cryptography_without_certificates(tmp_path: Path) -> None:
    config = tmp_path / "station.toml"
    config.write_text(f"""
[station]
id = "CS-LEAN"
data_dir = "{tmp_path / 'data'}"

[ocpp]
csms_url = "ws://127.0.0.1:9/ocpp"
""")
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(config)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "lean", done.stderr[-2000:]
