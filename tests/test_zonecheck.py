"""Zone checks at load time and the `dns-toy check-zone` command."""

import subprocess
import sys
from pathlib import Path

import pytest

from dns_toy.zonecheck import check_zone
from dns_toy.zonefile import parse_zone_text

HEADER = """\
$ORIGIN check.test.
$TTL 300
@      IN SOA ns1 hostmaster 5 3600 600 86400 60
"""
APEX_NS = """\
@      IN NS  ns1
ns1    IN A   192.0.2.1
"""
REPO = Path(__file__).resolve().parent.parent


def findings_for(body: str, with_ns: bool = True) -> list[str]:
    text = HEADER + (APEX_NS if with_ns else "") + body
    return [str(f) for f in check_zone(parse_zone_text(text, path="z"))]


def test_valid_zone_has_no_findings() -> None:
    assert findings_for("www IN A 192.0.2.2\n") == []


def test_missing_apex_ns_is_error() -> None:
    assert findings_for("", with_ns=False) == ["z:3: zone check.test. has no NS records at its apex"]


def test_cname_with_other_data_is_error() -> None:
    body = "www IN CNAME other\nwww IN TXT \"x\"\n"
    assert findings_for(body) == ["z:6: CNAME and other data at www.check.test."]


def test_cname_at_apex_is_error() -> None:
    assert findings_for("@ IN CNAME elsewhere.test.\n") == ["z:6: CNAME at the zone apex check.test."]


def test_in_zone_ns_without_address_is_error() -> None:
    text = HEADER + "@ IN NS ns1\n@ IN NS ns9\nns1 IN A 192.0.2.1\n"
    found = [str(f) for f in check_zone(parse_zone_text(text, path="z"))]
    assert found == ["z:5: NS name ns9.check.test. has no address records"]


def test_delegation_without_glue_is_error() -> None:
    body = "sub IN NS ns.sub\n"
    assert findings_for(body) == ["z:6: delegation sub.check.test.: NS name ns.sub.check.test. has no glue"]


def test_delegation_to_outside_name_needs_no_glue() -> None:
    assert findings_for("sub IN NS ns.elsewhere.test.\n") == []


def test_duplicate_record_is_warning() -> None:
    body = "www IN A 192.0.2.2\nwww IN A 192.0.2.2\n"
    assert findings_for(body) == ["z:7: warning: duplicate record dropped"]


def run_check_zone(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dns_toy", "check-zone", *args],
        capture_output=True, text=True, timeout=60, check=False,
    )


@pytest.mark.parametrize("zone_file", sorted((REPO / "zones").glob("*.zone")), ids=lambda p: p.name)
def test_check_zone_accepts_default_zones(zone_file: Path) -> None:
    result = run_check_zone(str(zone_file))
    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines()[-1] == "OK"


def test_check_zone_accepts_root_zone() -> None:
    result = run_check_zone(str(REPO / "tests" / "data" / "root-2018.zone"))
    assert result.returncode == 0, result.stdout
    assert "loaded serial 2018031200, 19597 records" in result.stdout
    assert result.stderr == ""


def test_check_zone_rejects_with_line(tmp_path: Path) -> None:
    zone = tmp_path / "bad.zone"
    zone.write_text(HEADER + APEX_NS + "www IN CNAME x\nwww IN A 192.0.2.9\n")
    result = run_check_zone(str(zone))
    assert result.returncode == 1
    assert result.stdout.splitlines()[0] == f"{zone}:6: CNAME and other data at www.check.test."
    assert "Traceback" not in result.stderr


def test_check_zone_takes_origin_option(tmp_path: Path) -> None:
    zone = tmp_path / "no-origin.zone"
    zone.write_text("$TTL 60\n@ IN SOA ns1 h 1 2 3 4 5\n@ IN NS ns1\nns1 IN A 192.0.2.1\n")
    result = run_check_zone(str(zone), "--origin", "given.test.")
    assert result.returncode == 0, result.stdout
    assert "zone given.test.: loaded serial 1, 3 records" in result.stdout


def test_apex_ns_below_own_cut_accepted() -> None:
    # As EDU. in RFC 1034 section 6.1: the apex NS name lies in a child
    # zone, and the parent's glue carries its address.
    text = HEADER + "@ IN NS ns.child\nchild IN NS ns.other.test.\n"
    assert [str(f) for f in check_zone(parse_zone_text(text, path="z"))] == []


def test_two_cnames_at_name_is_error() -> None:
    body = "www IN CNAME one\nwww IN CNAME two\n"
    assert findings_for(body) == ["z:7: more than one CNAME at www.check.test."]
