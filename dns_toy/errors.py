"""The exception tree of dns-toy.

DnsToyError
    ZoneFileError      a zone file that cannot be read, with path and line
    TopologyError      a topology file that cannot be used
    TransportError     an exchange with a name server that failed
        TransportTimeout   no matching reply before the timeout
"""


class DnsToyError(Exception):
    """Root of every error that dns-toy raises on purpose."""


class ZoneFileError(DnsToyError):
    """A zone file error, printed as `path:line: message`."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line
        self.message = message


class TopologyError(DnsToyError):
    """A topology file that names missing files or clashing servers."""


class TransportError(DnsToyError):
    """An exchange with a name server failed: refused, reset or malformed."""


class TransportTimeout(TransportError):
    """No matching reply arrived before the timeout."""
