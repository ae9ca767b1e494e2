"""The control channel of a dns-toy process: JSON lines over a Unix socket.

A client connects, sends one JSON object per line and reads one JSON
object per line back:

    {"command": "cache.show", "arguments": {"name": "example.com."}}
    {"ok": true, "result": {...}}
    {"ok": false, "error": "unknown command 'cache.shw'; ..."}

Only the user who runs the process can use the channel. The socket file is
created with mode 0600 in a directory that no other user may write (a
group- or world-writable directory, such as /tmp itself, is rejected at
start, because another user could replace the socket there). Each
connection's peer credentials (SO_PEERCRED) must also carry the server's
effective uid, so a socket whose mode was loosened by mistake still admits
no one else. There is no TCP listener.
"""

import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
import struct
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from dnslib import DNSError, DNSLabel

from .errors import DnsToyError
from .server import Handler, serve

log = logging.getLogger(__name__)

Command = Callable[[dict[str, Any]], Awaitable[Any]]
Commands = Mapping[str, Command]

SOCKET_MODE = 0o600
DIRECTORY_MODE = 0o700
MAX_REQUEST_BYTES = 65_536
IDLE_TIMEOUT = 60.0  # seconds a connection may stay silent between requests
DEFAULT_TIMEOUT = 10.0  # seconds a client waits for a reply
# sockaddr_un has room for 108 bytes on Linux, the final NUL included.
MAX_SOCKET_PATH = 107
_PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


class ControlError(DnsToyError):
    """The control channel cannot be used, or a command failed."""


def name_argument(arguments: dict[str, Any]) -> DNSLabel | None:
    """Return a command's optional `name` argument as a domain name.

    Raises ControlError when `name` is not a non-empty string or not a
    valid domain name.
    """
    name = arguments.get("name")
    if name is None:
        return None
    if not isinstance(name, str) or not name:
        raise ControlError("'name' must be a domain name")
    try:
        return DNSLabel(name)
    except (DNSError, UnicodeError) as exc:
        raise ControlError(f"invalid domain name {name!r}: {exc}") from None


def prepare_socket_directory(directory: Path) -> None:
    """Create `directory` with mode 0700, or check that an existing one is
    owned by this user and not writable by group or others."""
    try:
        directory.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
        info = directory.stat()
    except OSError as exc:
        raise ControlError(
            f"cannot create control directory {directory}: {exc.strerror}"
        ) from None
    if info.st_uid != os.geteuid():
        raise ControlError(
            f"control directory {directory} belongs to uid {info.st_uid}, "
            f"not to this user (uid {os.geteuid()}); use a directory of your own"
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ControlError(
            f"control directory {directory} is writable by other users "
            f"(mode {stat.S_IMODE(info.st_mode):04o}); use one with mode 0700"
        )


@contextlib.contextmanager
def _reachable(path: Path) -> Iterator[str]:
    """Yield a name for `path` short enough for sockaddr_un.

    A long path is reached through /proc/self/fd and an O_PATH descriptor
    of its directory (Linux), so deep test directories work too.
    """
    if len(os.fsencode(path)) <= MAX_SOCKET_PATH:
        yield str(path)
        return
    descriptor = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{descriptor}/{path.name}"
    finally:
        os.close(descriptor)


def _remove_stale_socket(path: Path) -> None:
    """Remove a socket file left by a process that has exited.

    Raises ControlError when another process still listens on `path`, or
    when `path` is something other than a socket.
    """
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise ControlError(f"{path} exists and is not a socket; remove it first")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            with _reachable(path) as name:
                probe.connect(name)
        except ConnectionRefusedError:
            path.unlink()
            return
        except OSError as exc:
            raise ControlError(f"cannot check {path}: {exc.strerror}") from None
    raise ControlError(f"another process is listening on {path}")


def bind_control_socket(path: Path) -> socket.socket:
    """Create the listening socket at `path`, mode 0600, in a private directory."""
    prepare_socket_directory(path.parent)
    _remove_stale_socket(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # The umask covers the moment between bind and chmod, so the socket is
    # never reachable by others, not even briefly.
    previous = os.umask(0o177)
    try:
        with _reachable(path) as name:
            sock.bind(name)
        os.chmod(path, SOCKET_MODE)
        sock.listen(16)
    except OSError as exc:
        sock.close()
        raise ControlError(f"cannot listen on {path}: {exc.strerror}") from None
    finally:
        os.umask(previous)
    sock.setblocking(False)
    return sock


def peer_credentials(sock: Any) -> tuple[int, int, int]:
    """Return the (pid, uid, gid) of the process at the other end of `sock`."""
    data = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
    pid, uid, gid = _PEERCRED.unpack(data)
    return pid, uid, gid


class ControlServer:
    """Serve `commands` on one Unix socket, one JSON request per line."""

    def __init__(self, path: Path, commands: Commands) -> None:
        self.path = path
        self.commands = dict(commands)
        self.commands.setdefault("ping", self._ping)
        self.rejected = 0  # connections refused by the peer uid check
        # Set once the process's DNS service listens, so that `ping` tells a
        # starting process from a ready one.
        self.listening = False
        self._server: asyncio.AbstractServer | None = None

    def mark_listening(self, _port: int = 0) -> None:
        self.listening = True

    async def start(self) -> None:
        sock = bind_control_socket(self.path)
        self._server = await asyncio.start_unix_server(
            self._serve_client, sock=sock, limit=MAX_REQUEST_BYTES
        )
        log.info("control channel listening on %s", self.path)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        self.path.unlink(missing_ok=True)
        log.info("control channel on %s closed", self.path)

    async def _ping(self, _arguments: dict[str, Any]) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "listening": self.listening,
            "commands": sorted(self.commands),
        }

    async def _serve_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            if self._admit(writer):
                await self._serve_requests(reader, writer)
        except (ConnectionError, TimeoutError):
            pass  # the client went away or stayed silent too long
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    def _admit(self, writer: asyncio.StreamWriter) -> bool:
        """Check the peer's uid; on a mismatch, send the reason and refuse."""
        pid, uid, _gid = peer_credentials(writer.get_extra_info("socket"))
        if uid == os.geteuid():
            return True
        self.rejected += 1
        log.warning(
            "rejected a control connection from uid %d (PID %d) on %s: "
            "only uid %d may use it (%d rejected so far)",
            uid,
            pid,
            self.path,
            os.geteuid(),
            self.rejected,
        )
        message = f"permission denied: uid {uid} may not use this control channel"
        writer.write(_encode({"ok": False, "error": message}))
        return False

    async def _serve_requests(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while True:
            try:
                line = await asyncio.wait_for(reader.readline(), IDLE_TIMEOUT)
            except ValueError:  # the line is longer than the stream limit
                message = f"request longer than {MAX_REQUEST_BYTES} bytes"
                writer.write(_encode({"ok": False, "error": message}))
                return
            if not line:
                return
            writer.write(_encode(await self._execute(line)))
            await writer.drain()

    async def _execute(self, line: bytes) -> dict[str, Any]:
        try:
            name, arguments = _decode_request(line)
        except ControlError as exc:
            return {"ok": False, "error": str(exc)}
        command = self.commands.get(name)
        if command is None:
            known = ", ".join(sorted(self.commands))
            return {"ok": False, "error": f"unknown command {name!r}; known: {known}"}
        try:
            return {"ok": True, "result": await command(arguments)}
        except DnsToyError as exc:
            return {"ok": False, "error": str(exc)}
        except Exception:  # a bug in a command must not stop the process
            log.exception("control command %s failed", name)
            return {"ok": False, "error": f"command {name!r} failed; see the log"}


def _decode_request(line: bytes) -> tuple[str, dict[str, Any]]:
    try:
        request = json.loads(line)
    except (UnicodeDecodeError, ValueError):
        raise ControlError("invalid request: not a JSON object on one line") from None
    if not isinstance(request, dict) or not isinstance(request.get("command"), str):
        raise ControlError('invalid request: expected {"command": NAME, ...}')
    arguments = request.get("arguments", {})
    if not isinstance(arguments, dict):
        raise ControlError("invalid request: 'arguments' must be an object")
    return request["command"], arguments


def _encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


@contextlib.asynccontextmanager
async def control_channel(
    path: str | Path | None, commands: Commands
) -> AsyncIterator[ControlServer | None]:
    """Serve the control channel at `path` for the duration of the block.

    With `path` None there is no channel and the block runs alone.
    """
    if path is None:
        yield None
        return
    server = ControlServer(Path(path), commands)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


def request(
    path: str | Path,
    command: str,
    arguments: dict[str, Any] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Any:
    """Send one command to the control channel at `path` and return its result.

    Raises ControlError when the socket cannot be reached, the reply does
    not come within `timeout` seconds, or the command failed.
    """
    path = Path(path)
    message = {"command": command, "arguments": arguments or {}}
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        _connect(sock, path)
        try:
            _send(sock, _encode(message))
            with sock.makefile("rb") as stream:
                line = stream.readline()
        except TimeoutError:
            raise ControlError(
                f"no reply from {path} within {timeout:g} s to {command!r}"
            ) from None
        except OSError as exc:
            raise ControlError(f"control channel {path} failed: {exc}") from None
    return _decode_reply(path, line)


def _send(sock: socket.socket, data: bytes) -> None:
    try:
        sock.sendall(data)
    except BrokenPipeError:
        # A server that refuses the peer sends the reason and closes at
        # once, maybe before this request is sent. The reason is still
        # waiting to be read.
        pass


def _connect(sock: socket.socket, path: Path) -> None:
    try:
        with _reachable(path) as name:
            sock.connect(name)
    except FileNotFoundError:
        raise ControlError(
            f"no control socket at {path}; is the process running with --control?"
        ) from None
    except ConnectionRefusedError:
        raise ControlError(
            f"nothing listens on {path}; the process has probably exited"
        ) from None
    except PermissionError:
        raise ControlError(
            f"permission denied for {path}; only its owner may use it"
        ) from None
    except OSError as exc:
        raise ControlError(f"cannot connect to {path}: {exc.strerror}") from None


def _decode_reply(path: Path, line: bytes) -> Any:
    if not line:
        raise ControlError(f"{path} closed the connection without a reply")
    try:
        reply = json.loads(line)
    except (UnicodeDecodeError, ValueError):
        raise ControlError(f"invalid reply from {path}: not JSON") from None
    if not isinstance(reply, dict) or "ok" not in reply:
        raise ControlError(f"invalid reply from {path}: no 'ok' field")
    if not reply["ok"]:
        raise ControlError(str(reply.get("error", "the command failed")))
    return reply.get("result")


def run_service_with_control(
    handler: Handler,
    address: str,
    port: int,
    label: str,
    control_path: str | Path | None,
    commands: Commands,
) -> int:
    """Run a DNS service as `server.run_service` does, with its control
    channel at `control_path` (none when None); return the exit status."""

    async def main() -> None:
        async with control_channel(control_path, commands) as channel:
            ready = None if channel is None else channel.mark_listening
            await serve(handler, address, port, label, ready=ready)

    try:
        asyncio.run(main())
    except ControlError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(
            f"error: cannot listen on {address}:{port}: {exc.strerror}", file=sys.stderr
        )
        return 1
    return 0


def control_socket_path(run_dir: Path, name: str) -> Path:
    """Return where the process called `name` of a hierarchy listens."""
    return run_dir / "control" / f"{name}.sock"
