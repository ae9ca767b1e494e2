"""Cache entries, staleness reports and counters as JSON and as text tables.

The resolver process turns its cache into the JSON form; the command line
receives that JSON over the control channel and prints it, with server
addresses replaced by their names when the run state lists them.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from dnslib import QTYPE

from .cache import NXDOMAIN_TYPE, CacheHit
from .names import name_key
from .staleness import StalenessReport, cached_values

NEGATIVE_TYPE_TEXT = "*"  # an NXDOMAIN entry covers every type


def entry_json(hit: CacheHit) -> dict[str, Any]:
    """Describe one live cache entry as a JSON object."""
    entry = hit.entry
    negative = None if entry.negative is None else entry.negative.value
    return {
        "name": str(entry.name),
        "type": None if entry.rtype == NXDOMAIN_TYPE else QTYPE.get(entry.rtype),
        "records": [] if negative else [str(rr.rdata) for rr in entry.records],
        "negative": negative,
        # A negative entry keeps the zone's SOA record, which sets its TTL.
        "soa": str(entry.records[0]).strip() if negative else None,
        "original_ttl": entry.ttl,
        "remaining_ttl": hit.remaining_ttl,
        "age": round(hit.age, 1),
        "credibility": entry.credibility.name.lower(),
        "source": entry.source,
    }


def report_json(report: StalenessReport) -> dict[str, Any]:
    """Describe one staleness report: the entry, the verdict, the source's data."""
    return {
        **entry_json(report.hit),
        "cached": list(cached_values(report.hit)),
        "authority": list(report.authority),
        "status": report.freshness.value,
        "detail": report.detail,
    }


def sort_hits(hits: Sequence[CacheHit]) -> list[CacheHit]:
    """Sort entries as a zone tree is read: parents first, then by type."""
    return sorted(
        hits,
        key=lambda hit: (tuple(reversed(name_key(hit.entry.name))), hit.entry.rtype),
    )


def format_table(rows: Sequence[Sequence[str]], right: frozenset[int]) -> list[str]:
    """Align `rows` (the first is the header) in columns two spaces apart.

    Columns whose index is in `right` are right-aligned. A left-aligned last
    column is not padded, so long record lists leave no trailing spaces.
    """
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            if i in right:
                cells.append(cell.rjust(widths[i]))
            elif i < len(row) - 1:
                cells.append(cell.ljust(widths[i]))
            else:
                cells.append(cell)
        lines.append("  ".join(cells).rstrip())
    return lines


def _type_text(entry: Mapping[str, Any]) -> str:
    return entry["type"] or NEGATIVE_TYPE_TEXT


def _data_text(entry: Mapping[str, Any]) -> str:
    if entry["negative"]:
        soa_owner = str(entry["soa"]).split()[0]
        return f"{entry['negative']} (SOA {soa_owner})"
    return ", ".join(entry["records"])


def _source_text(address: str, names: Mapping[str, str]) -> str:
    name = names.get(address)
    return address if name is None else f"{name} ({address})"


def format_cache(
    entries: Sequence[Mapping[str, Any]], names: Mapping[str, str]
) -> list[str]:
    """Return the lines of `dns-toy cache show` for the JSON entries."""
    header = ("NAME", "TYPE", "TTL", "LEFT", "AGE", "CREDIBILITY", "SOURCE", "DATA")
    rows = [header]
    for entry in entries:
        rows.append(
            (
                entry["name"],
                _type_text(entry),
                str(entry["original_ttl"]),
                str(entry["remaining_ttl"]),
                f"{entry['age']:.1f}",
                entry["credibility"],
                _source_text(entry["source"], names),
                _data_text(entry),
            )
        )
    return format_table(rows, frozenset({2, 3, 4}))


def format_staleness(
    reports: Sequence[Mapping[str, Any]], names: Mapping[str, str]
) -> list[str]:
    """Return the lines of `dns-toy cache stale` for the JSON reports."""
    header = ("NAME", "TYPE", "LEFT", "STATUS", "SOURCE", "CACHED", "AUTHORITY NOW")
    rows = [header]
    for report in reports:
        if report["status"] == "UNKNOWN":
            authority = f"? {report['detail']}"
        else:
            authority = ", ".join(report["authority"])
        rows.append(
            (
                report["name"],
                _type_text(report),
                str(report["remaining_ttl"]),
                report["status"],
                _source_text(report["source"], names),
                ", ".join(report["cached"]),
                authority,
            )
        )
    lines = format_table(rows, frozenset({2}))
    counts = {status: 0 for status in ("FRESH", "STALE", "UNKNOWN")}
    for report in reports:
        counts[report["status"]] += 1
    lines.append(
        f"{len(reports)} entries: {counts['FRESH']} fresh, {counts['STALE']} stale, "
        f"{counts['UNKNOWN']} unknown"
    )
    return lines


def format_stats(stats: Mapping[str, Any], names: Mapping[str, str]) -> list[str]:
    """Return the lines of `dns-toy stats` for the resolver's JSON counters."""
    lines = [
        f"uptime          {stats['uptime']:.1f} s",
        f"queries         {stats['queries']}",
        f"cache hits      {stats['cache_hits']}",
        f"cache misses    {stats['cache_misses']}",
        f"SERVFAIL        {stats['servfail']}",
        (
            f"upstream        {stats['upstream_queries']} queries, "
            f"{stats['timeouts']} timeouts"
        ),
    ]
    servers: Mapping[str, Mapping[str, Any]] = stats["servers"]
    if not servers:
        return lines
    with_srtt = any(
        counters.get("srtt_ms") is not None for counters in servers.values()
    )
    header = ["SERVER", "QUERIES", "TIMEOUTS", "ERRORS", "MEAN RTT"]
    if with_srtt:
        header.append("SRTT")
    rows = [tuple(header)]
    for address, counters in servers.items():
        row = [
            _source_text(address, names),
            str(counters["queries"]),
            str(counters["timeouts"]),
            str(counters["errors"]),
            _milliseconds(counters["mean_rtt_ms"]),
        ]
        if with_srtt:
            row.append(_milliseconds(counters.get("srtt_ms")))
        rows.append(tuple(row))
    right = frozenset(range(1, len(header)))
    return [*lines, "", *format_table(rows, right)]


def _milliseconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"
