"""Authoritative answering: a pure function from a query and zones to a reply.

The lookup follows RFC 1034 section 4.3.2. Starting at the apex of the
deepest zone that contains the query name, it walks down label by label:
an NS RRset below the apex is a zone cut and ends in a referral; an
existing name gives its data, a CNAME, or NODATA; a missing name gives a
wildcard synthesis (RFC 4592) or NXDOMAIN. Negative answers carry the
zone's SOA with TTL = min(SOA TTL, SOA MINIMUM), RFC 2308 section 3.
"""

import random
from dataclasses import dataclass, field
from enum import Enum

from dnslib import (
    CLASS,
    QTYPE,
    RCODE,
    RR,
    SOA,
    TXT,
    DNSLabel,
    DNSRecord,
)

from .names import NameKey, is_subdomain, lineage, name_key, parent
from .wire import find_opt_records, finish_reply, reject_unanswerable, start_reply
from .zone import RRset, Zone

EDNS_UDP_SIZE = 1232
MAX_CNAME_CHAIN = 8
ADDRESS_TYPES = (QTYPE.A, QTYPE.AAAA)
WILDCARD = b"*"
ZONE_TRANSFER_TYPES = (QTYPE.AXFR, QTYPE.IXFR)


class Outcome(Enum):
    """The kind of result an authority returns for a question."""

    ANSWER = "answer"
    CNAME = "cname"
    REFERRAL = "referral"
    NODATA = "nodata"
    NXDOMAIN = "nxdomain"
    REFUSED = "refused"


@dataclass
class Lookup:
    """The sections an authority returns for one question."""

    outcome: Outcome
    authoritative: bool = True
    answer: list[RR] = field(default_factory=list)
    authority: list[RR] = field(default_factory=list)
    additional: list[RR] = field(default_factory=list)

    @property
    def rcode(self) -> int:
        if self.outcome is Outcome.NXDOMAIN:
            return RCODE.NXDOMAIN
        if self.outcome is Outcome.REFUSED:
            return RCODE.REFUSED
        return RCODE.NOERROR


class RRsetOrder(Enum):
    """The order of the records of an RRset in the answer section.

    RFC 2181 section 5 leaves the order open; rotating it (BIND's
    `rrset-order cyclic`) spreads clients over the addresses of a name.
    """

    FIXED = "fixed"
    CYCLIC = "cyclic"
    RANDOM = "random"


class Catalog:
    """The zones one server is authoritative for."""

    def __init__(
        self,
        zones: list[Zone],
        server_name: str | None = None,
        order: RRsetOrder = RRsetOrder.FIXED,
    ) -> None:
        self.zones = {name_key(zone.origin): zone for zone in zones}
        self.server_name = server_name
        self.order = order
        self._rotations: dict[tuple[NameKey, int], int] = {}
        self._random = random.Random()

    def arrange(self, records: list[RR]) -> list[RR]:
        """Return `records` with each RRset in this catalog's order."""
        if self.order is RRsetOrder.FIXED:
            return records
        arranged: list[RR] = []
        for group in _rrset_groups(records):
            if len(group) > 1:
                group = self._reorder(group)
            arranged.extend(group)
        return arranged

    def _reorder(self, group: list[RR]) -> list[RR]:
        if self.order is RRsetOrder.RANDOM:
            self._random.shuffle(group)
            return group
        key = (name_key(group[0].rname), group[0].rtype)
        turn = self._rotations.get(key, 0)
        self._rotations[key] = turn + 1
        start = turn % len(group)
        return group[start:] + group[:start]

    def find_zone(self, qname: DNSLabel) -> Zone | None:
        """Return the deepest zone whose origin is `qname` or an ancestor."""
        key = name_key(qname)
        for start in range(len(key) + 1):
            zone = self.zones.get(key[start:])
            if zone is not None:
                return zone
        return None


def _rrset_groups(records: list[RR]) -> list[list[RR]]:
    groups: list[list[RR]] = []
    for record in records:
        last = groups[-1][0] if groups else None
        if (
            last is not None
            and last.rtype == record.rtype
            and last.rname == record.rname
        ):
            groups[-1].append(record)
        else:
            groups.append([record])
    return groups


def lookup(catalog: Catalog, qname: DNSLabel, qtype: int) -> Lookup:
    """Find the answer, referral or negative answer for one question."""
    zone = catalog.find_zone(qname)
    if zone is None:
        return Lookup(Outcome.REFUSED, authoritative=False)
    if qtype == QTYPE.DS and _is_apex(zone, qname) and zone.origin.label:
        # The DS RRset lives on the parent side of the cut (RFC 4035
        # section 2.4), so a server holding the parent answers from there.
        zone = catalog.find_zone(parent(qname)) or zone
    result = _lookup_in_zone(zone, qname, qtype)
    if result.outcome is Outcome.CNAME:
        _follow_cname_chain(catalog, result, qtype)
    return result


def _lookup_in_zone(zone: Zone, qname: DNSLabel, qtype: int) -> Lookup:
    for name in lineage(qname, zone.origin):
        node = zone.rrsets_at(name)
        if node is None or QTYPE.NS not in node:
            continue
        # The parent holds the DS RRset at a zone cut (RFC 4035 section 2.4).
        if qtype == QTYPE.DS and name_key(name) == name_key(qname):
            break
        return _referral(zone, node[QTYPE.NS])

    node = zone.rrsets_at(qname)
    if node is not None:
        return _answer_from_node(zone, node, qtype, owner=None)
    if zone.name_exists(qname):
        return _negative(zone, Outcome.NODATA)
    return _wildcard_or_nxdomain(zone, qname, qtype)


def _is_apex(zone: Zone, name: DNSLabel) -> bool:
    return name_key(name) == name_key(zone.origin)


def _wildcard_or_nxdomain(zone: Zone, qname: DNSLabel, qtype: int) -> Lookup:
    # RFC 4592 section 3.3.1: only the closest encloser's wildcard applies.
    encloser = parent(qname)
    while not zone.name_exists(encloser):
        encloser = parent(encloser)
    wildcard_name = DNSLabel((WILDCARD,) + encloser.label)
    if not zone.name_exists(wildcard_name):
        return _negative(zone, Outcome.NXDOMAIN)
    wildcard = zone.rrsets_at(wildcard_name)
    if wildcard is None:
        # A wildcard that is an empty non-terminal still exists, so it is
        # the source of synthesis and yields NODATA (RFC 4592 section 4.9).
        return _negative(zone, Outcome.NODATA)
    return _answer_from_node(zone, wildcard, qtype, owner=qname)


def _answer_from_node(
    zone: Zone, node: dict[int, RRset], qtype: int, owner: DNSLabel | None
) -> Lookup:
    if qtype == QTYPE.ANY:
        result = Lookup(Outcome.ANSWER)
        for rrset in node.values():
            result.answer.extend(rrset.to_rrs(owner))
        return result
    if qtype in node:
        rrset = node[qtype]
        result = Lookup(Outcome.ANSWER, answer=rrset.to_rrs(owner))
        result.additional = _additional_for(zone, [rrset])
        return result
    if QTYPE.CNAME in node:
        return Lookup(Outcome.CNAME, answer=node[QTYPE.CNAME].to_rrs(owner))
    return _negative(zone, Outcome.NODATA)


def _follow_cname_chain(catalog: Catalog, result: Lookup, qtype: int) -> None:
    """Extend a CNAME answer with the target's data from this server's zones."""
    seen = {name_key(result.answer[0].rname)}
    for _ in range(MAX_CNAME_CHAIN):
        target = result.answer[-1].rdata.label
        if name_key(target) in seen:
            return  # a loop: return the chain collected so far
        seen.add(name_key(target))
        zone = catalog.find_zone(target)
        if zone is None:
            return  # the client resolves a target outside our zones itself
        step = _lookup_in_zone(zone, target, qtype)
        result.answer.extend(step.answer)
        result.authority = step.authority
        result.additional = step.additional
        if step.outcome is not Outcome.CNAME:
            # RFC 6604: the rcode describes the last name in the chain.
            if step.outcome is Outcome.NXDOMAIN:
                result.outcome = Outcome.NXDOMAIN
            return


def _referral(zone: Zone, ns: RRset) -> Lookup:
    glue = _addresses_in_zone(zone, [rd.label for rd in ns.rdatas])
    return Lookup(
        Outcome.REFERRAL,
        authoritative=False,
        authority=ns.to_rrs(),
        additional=glue,
    )


def _negative(zone: Zone, outcome: Outcome) -> Lookup:
    soa = zone.soa
    rdata = soa.rdatas[0]
    assert isinstance(rdata, SOA)
    ttl = min(soa.ttl, int(rdata.times[4]))
    record = RR(soa.name, QTYPE.SOA, CLASS.IN, ttl, rdata)
    return Lookup(outcome, authority=[record])


def _additional_for(zone: Zone, rrsets: list[RRset]) -> list[RR]:
    """Return addresses for NS, MX and SRV targets held in this zone."""
    targets: list[DNSLabel] = []
    for rrset in rrsets:
        if rrset.rtype == QTYPE.NS or rrset.rtype == QTYPE.MX:
            targets.extend(rd.label for rd in rrset.rdatas)
        elif rrset.rtype == QTYPE.SRV:
            targets.extend(rd.target for rd in rrset.rdatas)
    return _addresses_in_zone(zone, targets)


def _addresses_in_zone(zone: Zone, names: list[DNSLabel]) -> list[RR]:
    records: list[RR] = []
    for name in names:
        if not is_subdomain(name, zone.origin):
            continue
        node = zone.rrsets_at(name)
        if node is None:
            continue
        for rtype in ADDRESS_TYPES:
            if rtype in node:
                records.extend(node[rtype].to_rrs())
    return records


def answer_query(query: DNSRecord, catalog: Catalog) -> DNSRecord:
    """Build the complete authoritative reply to a decoded query."""
    reply = start_reply(query)
    options = find_opt_records(query)
    rejected = reject_unanswerable(query, reply, options, EDNS_UDP_SIZE)
    if rejected is not None:
        return rejected

    question = query.questions[0]
    if question.qclass != CLASS.IN:
        return _answer_other_class(reply, catalog, options)
    if question.qtype in ZONE_TRANSFER_TYPES:
        # Zone transfers are not served (RFC 5936 section 4.2 allows REFUSED).
        return finish_reply(reply, RCODE.REFUSED, options, EDNS_UDP_SIZE)

    result = lookup(catalog, question.qname, question.qtype)
    reply.header.aa = int(result.authoritative)
    for record in catalog.arrange(result.answer):
        reply.add_answer(record)
    for record in result.authority:
        reply.add_auth(record)
    for record in result.additional:
        reply.add_ar(record)
    return finish_reply(reply, result.rcode, options, EDNS_UDP_SIZE)


def _answer_other_class(
    reply: DNSRecord, catalog: Catalog, options: list[RR]
) -> DNSRecord:
    question = reply.questions[0]
    identity_names = (
        name_key(DNSLabel("id.server")),
        name_key(DNSLabel("hostname.bind")),
    )
    asks_identity = (
        question.qclass == CLASS.CH
        and question.qtype == QTYPE.TXT
        and name_key(question.qname) in identity_names
        and catalog.server_name is not None
    )
    if not asks_identity:
        return finish_reply(reply, RCODE.REFUSED, options, EDNS_UDP_SIZE)
    # RFC 4892: a server's own identity, so a client can tell replicas apart.
    record = RR(question.qname, QTYPE.TXT, CLASS.CH, 0, TXT(catalog.server_name))
    reply.header.aa = 1
    reply.add_answer(record)
    return finish_reply(reply, RCODE.NOERROR, options, EDNS_UDP_SIZE)
