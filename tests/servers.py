"""Start and stop one `dns-toy serve` process on loopback for a test."""

import subprocess
import sys
import time
from pathlib import Path

import dns.exception
import dns.message
import dns.query
from conftest import free_port, stop_process

START_TIMEOUT = 15.0  # seconds for a server to answer its first query
STOP_TIMEOUT = 10.0  # seconds between SIGTERM and SIGKILL


class NameServer:
    """A `dns-toy serve` child process and where its log goes."""

    def __init__(
        self, zone_files: list[Path], address: str, log: Path, *options: str
    ) -> None:
        self.address = address
        self.port = free_port([address])
        self.log = log
        command = [
            sys.executable,
            "-m",
            "dns_toy",
            "serve",
            *map(str, zone_files),
            "--address",
            address,
            "--port",
            str(self.port),
            *options,
        ]
        with log.open("w") as output:
            self.process = subprocess.Popen(
                command, stdout=output, stderr=subprocess.STDOUT
            )

    def wait_until_answering(self, probe: str) -> None:
        query = dns.message.make_query(probe, "SOA")
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited early:\n{self.log.read_text()}")
            try:
                dns.query.udp(query, self.address, port=self.port, timeout=0.2)
                return
            except (dns.exception.Timeout, OSError):
                time.sleep(0.05)
        raise AssertionError(
            f"server did not answer in {START_TIMEOUT} s:\n{self.log.read_text()}"
        )

    def query(self, name: str, rdtype: str = "A") -> dns.message.Message:
        message = dns.message.make_query(name, rdtype)
        return dns.query.udp(message, self.address, port=self.port, timeout=2)

    def stop(self) -> int:
        """Stop the server by its PID; return its exit status."""
        return stop_process(self.process, STOP_TIMEOUT)
