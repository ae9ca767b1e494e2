"""QNAME minimisation (RFC 9156): send each zone only the name it needs.

On the way down, the servers of a zone are asked about the query name cut
to a few labels below that zone, with type A rather than NS (RFC 9156
section 2.1 covers the choice of type). A referral moves down a zone. Any other usable reply means there is no zone cut at the name
asked, so the next query goes one or more labels deeper. Only the last
query carries the full name and the real type.

The first MINIMISE_ONE_LAB queries add one label each, and the next ones
share out the remaining labels. After MAX_MINIMISE_COUNT queries the full
name goes out, so a name with many labels costs a bounded number of
queries (the limits and values of RFC 9156 section 2.3).

This is the relaxed mode: when a server answers NXDOMAIN or an error for
a name cut short, the walk falls back to the full name. RFC 8020 would
let NXDOMAIN for an ancestor end the lookup, but some servers wrongly
answer NXDOMAIN for empty non-terminals, so it is not trusted here.
"""

from dnslib import QTYPE, DNSLabel

from .replies import Outcome, Reply

MAX_MINIMISE_COUNT = 10
MINIMISE_ONE_LAB = 4


class QnameMinimiser:
    """Chooses the name and type of each query of one walk down the tree."""

    def __init__(self, qname: DNSLabel, qtype: int, enabled: bool) -> None:
        self.qname = qname
        self.qtype = qtype
        self.enabled = enabled
        self._known_labels = 0  # labels of the deepest name with no cut
        self._count = 0  # minimised queries so far

    def next_query(self, zone: DNSLabel) -> tuple[DNSLabel, int]:
        """Return the name and type to send to the servers of `zone`."""
        total = len(self.qname.label)
        known = max(len(zone.label), self._known_labels)
        if not self.enabled or known + 1 >= total:
            return self.qname, self.qtype
        labels = min(known + self._step(total - known), total)
        if labels >= total:
            return self.qname, self.qtype
        self._count += 1
        return DNSLabel(self.qname.label[-labels:]), QTYPE.A

    def is_minimised(self, name: DNSLabel) -> bool:
        """Return True when `name` is the query name cut short."""
        return len(name.label) < len(self.qname.label)

    def no_cut_at(self, name: DNSLabel) -> None:
        """Note that `name` is no zone cut, so the next query goes deeper."""
        self._known_labels = max(self._known_labels, len(name.label))

    def after_reply(self, name: DNSLabel, reply: Reply | None) -> str | None:
        """Go on after the reply to the minimised query for `name`.

        Returns None when the next query goes deeper, or why the walk
        falls back to the full name: NXDOMAIN, a lame reply or no usable
        reply at all.
        """
        if reply is None:
            reason = "no usable reply"
        elif reply.outcome is Outcome.NXDOMAIN:
            reason = "NXDOMAIN"
        elif reply.outcome is Outcome.LAME:
            reason = reply.reason
        else:
            self.no_cut_at(name)
            return None
        self.fall_back()
        return reason

    def fall_back(self) -> None:
        """Send the full name from now on."""
        self.enabled = False

    def _step(self, remaining: int) -> int:
        if self._count < MINIMISE_ONE_LAB:
            return 1
        if self._count < MAX_MINIMISE_COUNT:
            return max(1, remaining // (MAX_MINIMISE_COUNT - self._count))
        return remaining
