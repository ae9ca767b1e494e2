"""A fake hierarchy whose servers may recurse, on an in-memory network.

The hierarchy: the root delegates com. and org. with glue; com. delegates
example.com. with glue; org. delegates example.org. without glue, to
ns3.example.com. Each address serves a Catalog and, for a recursing
server, a Recursor, so queries run through the real authority and
recursion code. Time moves only on the FakeClock: each exchange costs
RTT seconds and a silent address costs the whole timeout.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from dnslib import DNSRecord
from fakenet import FakeClock, authority

from dns_toy.authority import Catalog, answer_query
from dns_toy.errors import TransportTimeout
from dns_toy.recursion import Recursor

RTT = 0.002
PORT = 5300

ROOT_ADDRESS = "198.51.100.1"
ROOT2_ADDRESS = "198.51.100.2"
COM_ADDRESS = "198.51.100.10"
COM2_ADDRESS = "198.51.100.11"
ORG_ADDRESS = "198.51.100.30"
NS1_ADDRESS = "192.0.2.1"
NS2_ADDRESS = "192.0.2.2"
NS3_ADDRESS = "192.0.2.3"

ROOT_HINTS = [
    ("a.root.test.", ROOT_ADDRESS),
    ("b.root.test.", ROOT2_ADDRESS),
]

ROOT = """\
$ORIGIN .
$TTL 86400
@                IN SOA a.root.test. admin.root.test. 1 1800 900 604800 86400
@                IN NS  a.root.test.
@                IN NS  b.root.test.
com.             IN NS  a.nic.com.
com.             IN NS  b.nic.com.
a.nic.com.       IN A   198.51.100.10
b.nic.com.       IN A   198.51.100.11
org.             IN NS  ns.nic.org.
ns.nic.org.      IN A   198.51.100.30
"""

COM = """\
$ORIGIN com.
$TTL 86400
@            IN SOA a.nic.com. admin.nic.com. 1 1800 900 604800 900
@            IN NS  a.nic.com.
@            IN NS  b.nic.com.
a.nic        IN A   198.51.100.10
b.nic        IN A   198.51.100.11
example      IN NS  ns1.example.com.
example      IN NS  ns2.example.com.
ns1.example  IN A   192.0.2.1
ns2.example  IN A   192.0.2.2
"""

ORG = """\
$ORIGIN org.
$TTL 86400
@            IN SOA ns.nic.org. admin.nic.org. 1 1800 900 604800 900
@            IN NS  ns.nic.org.
ns.nic       IN A   198.51.100.30
example      IN NS  ns3.example.com.
"""

# NXDOMAIN and NODATA are cached for min(SOA TTL 3600, MINIMUM 300) = 300 s.
EXAMPLE_COM = """\
$ORIGIN example.com.
$TTL 3600
@        IN SOA ns1 admin 1 7200 3600 1209600 300
@        IN NS  ns1
@        IN NS  ns2
ns1      IN A   192.0.2.1
ns2      IN A   192.0.2.2
ns3      IN A   192.0.2.3
www      IN A   192.0.2.80
ftp      IN CNAME www
alias    IN CNAME www.example.org.
"""

EXAMPLE_ORG = """\
$ORIGIN example.org.
$TTL 600
@        IN SOA ns3.example.com. admin 1 7200 3600 1209600 60
@        IN NS  ns3.example.com.
www      IN A   192.0.2.90
back     IN CNAME www.example.com.
"""

# A raw server: it returns a reply to send, or None to stay silent.
RawServer = Callable[[DNSRecord], Awaitable[DNSRecord | None]]


@dataclass
class Node:
    """What one address runs: zones, and a recursor when it recurses."""

    catalog: Catalog
    recursor: Recursor | None = None


@dataclass
class ChainNetwork:
    """A transport that delivers each query to the node at its address."""

    clock: FakeClock
    nodes: dict[str, Node | RawServer] = field(default_factory=dict)
    # (address, qname, RD bit) of every query, in the order sent.
    log: list[tuple[str, str, int]] = field(default_factory=list)

    async def query(
        self,
        message: DNSRecord,
        address: str,
        port: int,
        timeout: float,
        *,
        tcp: bool | None = None,
        exact_case: bool = False,
    ) -> DNSRecord:
        """Deliver `message`; a missing or silent node costs `timeout`."""
        received = DNSRecord.parse(message.pack())
        self.log.append((address, str(received.q.qname), received.header.rd))
        node = self.nodes.get(address)
        reply = None if node is None else await _serve(node, received)
        if reply is None:
            self.clock.advance(timeout)
            raise TransportTimeout(f"no reply from {address} within {timeout:g} s")
        self.clock.advance(RTT)
        return DNSRecord.parse(reply.pack())

    def sent_to(self, address: str) -> int:
        return sum(1 for entry in self.log if entry[0] == address)


async def _serve(node: "Node | RawServer", query: DNSRecord) -> DNSRecord | None:
    if not isinstance(node, Node):
        return await node(query)
    if node.recursor is None:
        return answer_query(query, node.catalog)
    return await node.recursor.respond(query, node.catalog)


@dataclass
class Chain:
    """The fake hierarchy; `recursors` maps each address to its Recursor."""

    clock: FakeClock
    network: ChainNetwork
    recursors: dict[str, Recursor]


ZONES_AT = {
    ROOT_ADDRESS: (ROOT,),
    ROOT2_ADDRESS: (ROOT,),
    COM_ADDRESS: (COM,),
    COM2_ADDRESS: (COM,),
    ORG_ADDRESS: (ORG,),
    NS1_ADDRESS: (EXAMPLE_COM,),
    NS2_ADDRESS: (EXAMPLE_COM,),
    NS3_ADDRESS: (EXAMPLE_ORG,),
}

NAMES_AT = {
    ROOT_ADDRESS: "a.root.test.",
    ROOT2_ADDRESS: "b.root.test.",
    COM_ADDRESS: "a.nic.com.",
    COM2_ADDRESS: "b.nic.com.",
    ORG_ADDRESS: "ns.nic.org.",
    NS1_ADDRESS: "ns1.example.com.",
    NS2_ADDRESS: "ns2.example.com.",
    NS3_ADDRESS: "ns3.example.com.",
}


def build_chain(recursing: bool = True) -> Chain:
    """Build the hierarchy with every server recursing, or none."""
    clock = FakeClock()
    network = ChainNetwork(clock)
    recursors: dict[str, Recursor] = {}
    for address, zones in ZONES_AT.items():
        recursor = None
        if recursing:
            recursor = Recursor(
                NAMES_AT[address], ROOT_HINTS, PORT, transport=network, clock=clock
            )
            recursors[address] = recursor
        network.nodes[address] = Node(authority(*zones), recursor)
    return Chain(clock, network, recursors)
