"""Live reload of a running server: SIGHUP, --watch, and broken edits."""

import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from servers import NameServer

ADDRESS = "127.0.0.1"
RELOAD_DEADLINE = 1.0  # seconds within which a reload must show

ZONE = """\
$ORIGIN reload.test.
$TTL 60
@    IN SOA ns hostmaster {serial} 3600 600 86400 30
     IN NS  ns
ns   IN A   127.0.0.1
www  IN A   {address}
"""

OTHER = """\
$ORIGIN other.test.
$TTL 60
@    IN SOA ns.reload.test. hostmaster 1 3600 600 86400 30
     IN NS  ns.reload.test.
www  IN A   198.51.100.7
"""


def address_of(server: NameServer, name: str) -> str | None:
    reply = server.query(name)
    if not reply.answer:
        return None
    return reply.answer[0][0].to_text()


def wait_for(condition: Callable[[], bool], limit: float) -> float | None:
    """Poll `condition`; return the seconds it took, or None past `limit`."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if condition():
            return time.monotonic() - started
        time.sleep(0.02)
    return None


def start(tmp_path: Path, *options: str) -> tuple[NameServer, Path]:
    zone = tmp_path / "reload.test.zone"
    zone.write_text(ZONE.format(serial=1, address="192.0.2.1"))
    other = tmp_path / "other.test.zone"
    other.write_text(OTHER)
    server = NameServer([zone, other], ADDRESS, tmp_path / "server.log", *options)
    server.wait_until_answering("reload.test.")
    return server, zone


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[NameServer, Path]]:
    server, zone = start(tmp_path)
    try:
        yield server, zone
    finally:
        assert server.stop() == 0


def test_sighup_reloads_edited_zone(running: tuple[NameServer, Path]) -> None:
    server, zone = running
    assert address_of(server, "www.reload.test.") == "192.0.2.1"
    zone.write_text(ZONE.format(serial=2, address="192.0.2.2"))
    server.process.send_signal(signal.SIGHUP)
    took = wait_for(lambda: address_of(server, "www.reload.test.") == "192.0.2.2", RELOAD_DEADLINE)
    assert took is not None, server.log.read_text()
    assert "reloaded zone reload.test.: serial 1 -> 2" in server.log.read_text()


def test_broken_edit_keeps_old_zone(running: tuple[NameServer, Path]) -> None:
    server, zone = running
    broken = ZONE.format(serial=2, address="192.0.2.2").replace("www  IN A   192.0.2.2", "www  IN A   192.0.2")
    zone.write_text(broken)
    server.process.send_signal(signal.SIGHUP)
    logged = wait_for(lambda: f"{zone}:6: " in server.log.read_text(), 5.0)
    assert logged is not None, server.log.read_text()
    assert address_of(server, "www.reload.test.") == "192.0.2.1"
    assert address_of(server, "www.other.test.") == "198.51.100.7"
    assert "still serving serial 1" in server.log.read_text()


def test_watch_reloads_without_signal(tmp_path: Path) -> None:
    server, zone = start(tmp_path, "--watch")
    try:
        zone.write_text(ZONE.format(serial=3, address="192.0.2.3"))
        took = wait_for(lambda: address_of(server, "www.reload.test.") == "192.0.2.3", 3.0)
        assert took is not None, server.log.read_text()
        assert address_of(server, "www.other.test.") == "198.51.100.7"
    finally:
        assert server.stop() == 0
