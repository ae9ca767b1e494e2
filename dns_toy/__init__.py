"""dns-toy: a small DNS hierarchy (root, TLD, authoritative, resolver) for loopback."""

__version__ = "0.1.0"
