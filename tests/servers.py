"""Start and stop one `dns-toy serve` process on loopback for a test."""

import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dns.exception
import dns.message
import dns.query

START_TIMEOUT = 15.0  # seconds for a server to answer its first query
STOP_TIMEOUT = 10.0  # seconds between SIGTERM and SIGKILL


def port_is_free(address: str, port: int) -> bool:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind((address, port))
            except OSError:
                return False
    return True


def free_port(addresses: list[str]) -> int:
    """Return a port in 20000-40000 free for UDP and TCP on every address."""
    for _ in range(100):
        port = random.randint(20000, 40000)
        if all(port_is_free(address, port) for address in addresses):
            return port
    raise RuntimeError(f"no free port found on {', '.join(addresses)}")


class NameServer:
    """A `dns-toy serve` child process and where its log goes."""

    def __init__(self, zone_files: list[Path], address: str, log: Path, *options: str) -> None:
        self.address = address
        self.port = free_port([address])
        self.log = log
        command = [sys.executable, "-m", "dns_toy", "serve", *map(str, zone_files),
                   "--address", address, "--port", str(self.port), *options]
        with log.open("w") as output:
            self.process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)

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
        raise AssertionError(f"server did not answer in {START_TIMEOUT} s:\n{self.log.read_text()}")

    def query(self, name: str, rdtype: str = "A") -> dns.message.Message:
        message = dns.message.make_query(name, rdtype)
        return dns.query.udp(message, self.address, port=self.port, timeout=2)

    def stop(self) -> int:
        """Stop the server by its PID; return its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode
