"""Domain-name helpers on top of dnslib's DNSLabel.

dnslib compares labels case-insensitively but its `matchSuffix` fails for
the root name, so ancestry is computed here, label by label.
"""

from dnslib import DNSLabel

NameKey = tuple[bytes, ...]
ROOT = DNSLabel(())


def name_key(name: DNSLabel) -> NameKey:
    """Return the lowercased labels of `name`, for dictionary lookups."""
    return tuple(label.lower() for label in name.label)


def is_subdomain(name: DNSLabel, ancestor: DNSLabel) -> bool:
    """Return True when `name` is `ancestor` or below it (label-wise)."""
    count = len(ancestor.label)
    if count > len(name.label):
        return False
    if count == 0:
        return True
    tail = name.label[-count:]
    return all(a.lower() == b.lower() for a, b in zip(tail, ancestor.label))


def parent(name: DNSLabel) -> DNSLabel:
    """Return the name one label up; the root is its own parent."""
    return DNSLabel(name.label[1:])


def relative_depth(name: DNSLabel, ancestor: DNSLabel) -> int:
    """Return how many labels `name` has below `ancestor`."""
    return len(name.label) - len(ancestor.label)


def lineage(name: DNSLabel, ancestor: DNSLabel) -> list[DNSLabel]:
    """Return the names from just below `ancestor` down to `name` itself."""
    depth = relative_depth(name, ancestor)
    return [DNSLabel(name.label[depth - i :]) for i in range(1, depth + 1)]
