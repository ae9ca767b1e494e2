"""Classification of replies from name servers.

These are pure functions of a reply and the zone asked: `classify_reply`
scrubs a reply to the bailiwick of that zone (see `bailiwick`) and names
what it is. The resolver in `iterator` decides what to do next from the
result.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from dnslib import QTYPE, RCODE, RR, DNSLabel, DNSRecord

from .bailiwick import Scrubbed, scrub
from .names import NameKey, is_subdomain, name_key, parent

ADDRESS_TYPES = (QTYPE.A, QTYPE.AAAA)


class Outcome(Enum):
    """The result of one exchange with a name server or of one cache lookup."""

    ANSWER = "answer"
    CNAME = "CNAME"
    REFERRAL = "referral"
    NXDOMAIN = "NXDOMAIN"
    NODATA = "NODATA"
    LAME = "lame"
    TIMEOUT = "timeout"
    ERROR = "error"


@dataclass(frozen=True)
class Referral:
    """A delegation to a child zone: its NS RRset and in-bailiwick glue."""

    zone: DNSLabel
    ns: tuple[RR, ...]
    glue: tuple[RR, ...]


@dataclass(frozen=True)
class Reply:
    """A reply scrubbed to the bailiwick of the zone asked, and classified."""

    outcome: Outcome
    # The CNAME chain that starts at the query name, then the final RRset.
    answer: tuple[RR, ...] = ()
    # The last name of the chain: the query name when there is no CNAME.
    target: DNSLabel | None = None
    soa: RR | None = None
    referral: Referral | None = None
    reason: str = ""

    def describe(self) -> str:
        """Describe the reply in a few words, for the trace."""
        chain = [rr for rr in self.answer if rr.rtype == QTYPE.CNAME]
        prefix = f"CNAME to {self.target}, " if chain else ""
        if self.outcome is Outcome.ANSWER:
            count = len(self.answer) - len(chain)
            return f"{prefix}answer with {count} record(s)"
        if self.outcome is Outcome.CNAME:
            return f"CNAME to {self.target}"
        if self.outcome is Outcome.REFERRAL and self.referral is not None:
            return f"referral to {self.referral.zone}"
        if self.outcome is Outcome.LAME:
            return f"lame: {self.reason}"
        return f"{prefix}{self.outcome.value}"


def classify_reply(
    reply: DNSRecord, qname: DNSLabel, qtype: int, zone: DNSLabel
) -> Reply:
    """Classify a reply from a server of `zone` to the question qname/qtype.

    Only records at or below `zone` are used, so a server cannot speak for
    names it is not authoritative for. Answers need AA=1. A referral must
    delegate a zone below `zone` that contains the name, and a negative
    answer counts only with AA=1 or an in-bailiwick SOA.
    """
    header = reply.header
    if header.tc:
        return _lame("truncated reply")
    if header.rcode not in (RCODE.NOERROR, RCODE.NXDOMAIN):
        return _lame(f"rcode {RCODE.get(header.rcode, header.rcode)}")

    scrubbed = scrub(reply, zone)
    if scrubbed.dropped_answers and not scrubbed.answer:
        return _lame(f"answer outside zone {zone}")
    chain, target, final = follow_chain(scrubbed.answer, qname, qtype)
    answer = tuple(chain + final)
    soa = _find_soa(scrubbed.authority, target, zone)
    if final:
        if not header.aa:
            return _lame("answer without AA")
        return Reply(Outcome.ANSWER, answer, target)
    if header.rcode == RCODE.NXDOMAIN:
        if not (header.aa or soa):
            return _lame("NXDOMAIN without AA or SOA")
        return Reply(Outcome.NXDOMAIN, answer, target, soa)
    if chain:
        return _classify_chain_end(
            header.aa, answer, target, soa, scrubbed, zone, qtype
        )
    return _classify_no_answer(header.aa, qname, qtype, soa, reply, scrubbed, zone)


def _classify_chain_end(
    aa: int,
    answer: tuple[RR, ...],
    target: DNSLabel,
    soa: RR | None,
    scrubbed: Scrubbed,
    zone: DNSLabel,
    qtype: int,
) -> Reply:
    if not aa:
        return _lame("CNAME without AA")
    # An SOA means the target lies in the server's zone and has no such data.
    if soa is not None:
        return Reply(Outcome.NODATA, answer, target, soa)
    referral = _find_referral(scrubbed, target, qtype, zone)
    return Reply(Outcome.CNAME, answer, target, referral=referral)


def _classify_no_answer(
    aa: int,
    qname: DNSLabel,
    qtype: int,
    soa: RR | None,
    reply: DNSRecord,
    scrubbed: Scrubbed,
    zone: DNSLabel,
) -> Reply:
    if aa and soa is not None:
        return Reply(Outcome.NODATA, (), qname, soa)
    referral = _find_referral(scrubbed, qname, qtype, zone)
    if referral is not None:
        return Reply(Outcome.REFERRAL, (), qname, referral=referral)
    if aa:
        # RFC 2308 section 2.2 NODATA without SOA: valid, but not cacheable.
        return Reply(Outcome.NODATA, (), qname)
    # An upward or sideways referral, scrubbed or not, makes the server
    # lame for the zone asked: it should have answered or delegated down.
    cuts = {str(rr.rname) for rr in reply.auth if rr.rtype == QTYPE.NS}
    if cuts:
        return _lame(f"referral to {', '.join(sorted(cuts))} does not lead down")
    return _lame("no answer, referral or SOA")


def _lame(reason: str) -> Reply:
    return Reply(Outcome.LAME, reason=reason)


def follow_chain(
    records: Sequence[RR], qname: DNSLabel, qtype: int
) -> tuple[list[RR], DNSLabel, list[RR]]:
    """Follow CNAMEs from `qname` through `records`.

    Returns the CNAMEs followed, the name reached and the records of type
    `qtype` there (empty when the chain ends without them or loops).
    """
    chain: list[RR] = []
    name = qname
    seen: set[NameKey] = set()
    while name_key(name) not in seen:
        seen.add(name_key(name))
        owned = [rr for rr in records if name_key(rr.rname) == name_key(name)]
        final = [rr for rr in owned if rr.rtype == qtype or qtype == QTYPE.ANY]
        if final:
            return chain, name, final
        cname = next((rr for rr in owned if rr.rtype == QTYPE.CNAME), None)
        if cname is None:
            break
        chain.append(cname)
        name = cname.rdata.label
    return chain, name, []


def _find_soa(authority: tuple[RR, ...], name: DNSLabel, zone: DNSLabel) -> RR | None:
    # The SOA of a negative answer is the apex of a zone that contains the
    # name, and the server must be authoritative for it.
    for rr in authority:
        if (
            rr.rtype == QTYPE.SOA
            and is_subdomain(rr.rname, zone)
            and is_subdomain(name, rr.rname)
        ):
            return rr
    return None


def _find_referral(
    scrubbed: Scrubbed, name: DNSLabel, qtype: int, zone: DNSLabel
) -> Referral | None:
    """Return the deepest delegation below `zone` that contains `name`.

    A referral is followed only when it leads closer to `name` than the
    current cut. For a DS question a cut at `name` itself does not count,
    because the DS RRset lives on the parent side of the cut.
    """
    lowest = parent_side(name, qtype)
    cuts = [
        rr
        for rr in scrubbed.authority
        if rr.rtype == QTYPE.NS
        and is_subdomain(lowest, rr.rname)
        and is_subdomain(rr.rname, zone)
        and name_key(rr.rname) != name_key(zone)
    ]
    if not cuts:
        return None
    child = max(cuts, key=lambda rr: len(rr.rname.label)).rname
    ns = tuple(rr for rr in cuts if name_key(rr.rname) == name_key(child))
    servers = {name_key(rr.rdata.label) for rr in ns}
    # Glue is used only for the delegation's own NS names and only when it
    # lies inside the zone of the server that sent it (RFC 2181 section
    # 5.4.1). That admits in-domain glue and sibling glue such as the
    # root's for a.gtld-servers.net. Scrubbing already dropped addresses
    # for names the server is not authoritative for.
    glue = tuple(
        rr
        for rr in scrubbed.additional
        if rr.rtype in ADDRESS_TYPES and name_key(rr.rname) in servers
    )
    return Referral(child, ns, glue)


def parent_side(name: DNSLabel, qtype: int) -> DNSLabel:
    """Return the deepest name whose zone can hold `qtype` at `name`."""
    if qtype == QTYPE.DS and name.label:
        return parent(name)
    return name
