"""Diagnostics and logs (2.0.1 N01, 1.6 GetDiagnostics and the security extension's
GetLog): the agent's log written to rotated, bounded files under data_dir/logs
(files.py), a time window of it or of the security log packed into one zip file
(pack.py), uploaded over http(s) or ftp (upload.py) by one job at a time (jobs.py).

Nothing here is imported at `evse_agent.agent` import time except files.py (stdlib
logging only); aiohttp and ftplib are loaded when an upload runs.
"""
