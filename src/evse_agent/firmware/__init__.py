"""Signed firmware: the bundle format, its verification, download, install and rollback.

Nothing here is imported at agent start-up unless an update runs; the modules import
`cryptography` and `aiohttp` inside their functions.
"""
