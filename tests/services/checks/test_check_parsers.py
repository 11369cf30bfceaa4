"""The parsers of ss, df, systemctl, AIDE and friends: right on real output, and never a crash on any input."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from services.checks.parsers import (
    parse_aide,
    parse_apt_upgradable,
    parse_chrony_tracking,
    parse_df,
    parse_failed_units,
    parse_find_listing,
    parse_iptables_save,
    parse_last,
    parse_list_boots,
    parse_nft_ruleset,
    parse_sha256sums,
    parse_ss,
    split_sections,
    syslog_time,
)

SS = """\
tcp   LISTEN 0      128          0.0.0.0:22         0.0.0.0:*    users:(("sshd",pid=612,fd=3))
tcp   LISTEN 0      511          0.0.0.0:443        0.0.0.0:*    users:(("nginx",pid=830,fd=8),("nginx",pid=829,fd=8))
tcp   LISTEN 0      80         127.0.0.1:3306       0.0.0.0:*    users:(("mariadbd",pid=701,fd=21))
tcp   LISTEN 0      4096   127.0.0.53%lo:53         0.0.0.0:*    users:(("systemd-resolve",pid=400,fd=14))
tcp   LISTEN 0      128             [::]:22            [::]:*    users:(("sshd",pid=612,fd=4))
tcp   LISTEN 0      128                *:8081             *:*
udp   UNCONN 0      0            0.0.0.0:68         0.0.0.0:*    users:(("dhclient",pid=355,fd=7))
udp   UNCONN 0      0      [fe80::1]%eth0:546          [::]:*    users:(("dhclient",pid=356,fd=5))
"""


def test_ss_gives_protocol_address_port_and_programs() -> None:
    listeners = {item.subject: item for item in parse_ss(SS)}
    assert set(listeners) == {
        "tcp 0.0.0.0:22", "tcp 0.0.0.0:443", "tcp 127.0.0.1:3306", "tcp 127.0.0.53%lo:53", "tcp [::]:22",
        "tcp *:8081", "udp 0.0.0.0:68", "udp [fe80::1%eth0]:546",
    }
    assert listeners["tcp 0.0.0.0:443"].processes == (("nginx", 830), ("nginx", 829))
    assert listeners["tcp 0.0.0.0:443"].programs == "nginx (pid 830), nginx (pid 829)"
    assert listeners["tcp *:8081"].processes == ()
    assert listeners["tcp 127.0.0.1:3306"].loopback
    assert not listeners["tcp 0.0.0.0:22"].loopback
    # the subject never holds the pid: a restart keeps it
    restarted = parse_ss(SS.replace("pid=612", "pid=9999"))
    assert {item.subject for item in restarted} == set(listeners)


DF = """\
Filesystem     1024-blocks     Used Available Capacity Mounted on
/dev/vda1         20511312 17432816   2013536      90% /
/dev/vdb1        103081248  2048000  95767976       3% /srv/data files
"""
DF_INODES = """\
Filesystem      Inodes  IUsed   IFree IUse% Mounted on
/dev/vda1      1310720 1300000   10720   100% /
btrfs               0       0       0     - /mnt/btrfs
"""


def test_df_reads_blocks_and_inodes_and_skips_what_has_no_percent() -> None:
    rows = {row.mount: row for row in parse_df(DF)}
    assert rows["/"].percent == 90 and rows["/"].used == 17432816
    assert rows["/srv/data files"].percent == 3
    inodes = parse_df(DF_INODES)
    assert [(row.mount, row.percent) for row in inodes] == [("/", 100)]


SYSTEMCTL = """\
nginx.service          loaded failed failed A high performance web server and a reverse proxy server
certbot.timer          loaded failed failed Run certbot twice daily
● php8.2-fpm.service   loaded failed failed The PHP 8.2 FastCGI Process Manager
"""


def test_systemctl_failed_units() -> None:
    units = parse_failed_units(SYSTEMCTL)
    assert [u.unit for u in units] == ["nginx.service", "certbot.timer", "php8.2-fpm.service"]
    assert units[1].description == "Run certbot twice daily"
    assert parse_failed_units("0 loaded units listed.\n") == []


AIDE_CHANGED = """\
Start timestamp: 2024-03-01 06:25:01 +0000 (AIDE 0.18.3)
AIDE found differences between database and filesystem!!

Summary:
  Total number of entries:\t45123
  Added entries:\t\t1
  Removed entries:\t\t1
  Changed entries:\t\t2

---------------------------------------------------
Added entries:
---------------------------------------------------

f++++++++++++++++: /etc/cron.d/backdoor

---------------------------------------------------
Removed entries:
---------------------------------------------------

f----------------: /etc/old.conf

---------------------------------------------------
Changed entries:
---------------------------------------------------

f   ...    .C... : /etc/passwd
f   ...  p.C... : /usr/bin/sudo

---------------------------------------------------
Detailed information about changes:
---------------------------------------------------

File: /etc/passwd
  SHA256    : abc | def
"""


def test_aide_report() -> None:
    report = parse_aide(AIDE_CHANGED)
    assert report.clean is False
    assert (report.added, report.removed, report.changed) == (1, 1, 2)
    assert report.entries == ("added /etc/cron.d/backdoor", "removed /etc/old.conf", "changed /etc/passwd",
                              "changed /usr/bin/sudo")
    clean = parse_aide("Start timestamp: 2024-03-02 06:25:01 +0000 (AIDE 0.18.3)\n"
                       "All files match AIDE database. Looks okay!\n")
    assert clean.clean is True and clean.total == 0
    assert parse_aide("aide: command not found").clean is None
    # a log with two runs: the last one counts
    assert parse_aide(AIDE_CHANGED + "\n" + "Start timestamp: 2024-03-02 06:25:01 +0000 (AIDE 0.18.3)\n"
                      "All files match AIDE database. Looks okay!\n").clean is True


def test_apt_security_updates() -> None:
    text = ("Listing...\n"
            "openssl/bookworm-security 3.0.13-1~deb12u1 amd64 [upgradable from: 3.0.11-1~deb12u2]\n"
            "tzdata/bookworm-updates 2024a-0+deb12u1 all [upgradable from: 2023c-5]\n"
            "libcups2/oldstable,oldstable-security 2.4.2-3+deb12u9 amd64 [upgradable from: 2.4.2-3+deb12u8]\n")
    packages = parse_apt_upgradable(text)
    assert [(p.package, p.security) for p in packages] == [("openssl", True), ("tzdata", False), ("libcups2", True)]


def test_firewall_rulesets() -> None:
    empty = parse_nft_ruleset("table inet filter {\n\tchain input {\n\t\ttype filter hook input priority filter; "
                              "policy accept;\n\t}\n}\n")
    assert empty.empty
    rules = parse_nft_ruleset("table inet filter {\n\tchain input {\n\t\ttype filter hook input priority 0; policy "
                              "drop;\n\t\tct state established,related accept\n\t\ttcp dport 22 accept\n\t}\n}\n")
    assert not rules.empty and rules.rules == 2 and rules.dropping_policies == 1
    assert parse_nft_ruleset("").empty
    assert parse_iptables_save("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\nCOMMIT\n").empty
    saved = parse_iptables_save("*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n")
    assert saved.rules == 1 and saved.dropping_policies == 1


def test_boot_history_from_last_and_the_journal() -> None:
    last = parse_last(
        "reboot   system boot  6.1.0-18-amd64   2024-03-05T10:01:10+00:00   still running\n"
        "shutdown system down  6.1.0-18-amd64   2024-03-05T10:00:00+00:00 - 2024-03-05T10:01:10+00:00  (00:01)\n"
        "reboot   system boot  6.1.0-18-amd64   2024-03-01T09:00:00+00:00 - 2024-03-05T10:00:00+00:00 (4+01:00)\n"
        "reboot   system boot  6.1.0-18-amd64   2024-02-20T09:00:00+00:00 - crash                     (9+00:00)\n"
        "\nwtmp begins 2024-02-01T00:00:01+00:00\n")
    assert last.down == ((dt.datetime(2024, 3, 5, 10, 0, tzinfo=dt.UTC), dt.datetime(2024, 3, 5, 10, 1, 10,
                                                                                      tzinfo=dt.UTC)),)
    assert last.crashes == (dt.datetime(2024, 2, 20, 9, 0, tzinfo=dt.UTC),)
    assert len(last.boots) == 3 and last.begins == dt.datetime(2024, 2, 1, 0, 0, 1, tzinfo=dt.UTC)
    journal = parse_list_boots('[{"index":-1,"boot_id":"a","first_entry":1709280000000000,'
                               '"last_entry":1709632800000000},{"index":0,"boot_id":"b",'
                               '"first_entry":1709632890000000,"last_entry":1709640000000000}]')
    assert [(b - a).total_seconds() for a, b in journal.down] == [90.0]
    text = parse_list_boots("IDX BOOT ID                          FIRST ENTRY                 LAST ENTRY\n"
                            " -1 aaaa Mon 2024-03-04 10:00:00 UTC Tue 2024-03-05 10:00:00 UTC\n"
                            "  0 bbbb Tue 2024-03-05 10:00:30 UTC Tue 2024-03-05 12:00:00 UTC\n")
    assert [(b - a).total_seconds() for a, b in text.down] == [30.0]


def test_find_listing_and_hashes_keep_any_file_name() -> None:
    name = "/etc/we\tird\nname"
    listing = parse_find_listing(f"f\t644\troot\troot\t12\t1.5\t2.5\t{name}\0\0l\t777\troot\troot\t4\t1\t1\t/etc/x\0"
                                 "/etc/target\0")
    assert listing.entries[name].size == 12 and listing.entries[name].kind == "f"
    assert listing.entries["/etc/x"].link == "/etc/target"
    sums = parse_sha256sums("a" * 64 + "  " + name + "\0" + "b" * 64 + "  /etc/x\0")
    assert sums == {name: "a" * 64, "/etc/x": "b" * 64}


def test_sections_cannot_be_faked_without_the_marker() -> None:
    text = "\nM1 a\none\n@@fake b\nM1 b x\ntwo\n"
    sections = split_sections(text, "M1")
    assert sections["a"].body == "one\n@@fake b" and sections["b"].arg == "x" and sections["b"].body == "two"


def test_auth_log_times() -> None:
    now = dt.datetime(2024, 1, 2, 0, 30, tzinfo=dt.UTC)
    assert syslog_time("Jan  2 00:10:00 app1 sshd[1]: Failed password", now) == now.replace(minute=10)
    assert syslog_time("Dec 31 23:59:00 app1 sshd[1]: x", now) == dt.datetime(2023, 12, 31, 23, 59, tzinfo=dt.UTC)
    assert syslog_time("2024-01-02T00:20:00.123456+00:00 app1 sshd[1]: x", now) == \
        dt.datetime(2024, 1, 2, 0, 20, 0, 123456, tzinfo=dt.UTC)
    assert syslog_time("garbage", now) is None


# --- no crash on any input -------------------------------------------------------------------------------

TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=400)
# Lines shaped like the real thing, with fields drawn at random: they reach deeper into the parsers.
FIELD = st.text(alphabet=st.sampled_from("0123456789abcdef.:[]%*/-_()\",=%"), max_size=12)
LINES = st.lists(st.lists(FIELD, min_size=0, max_size=8).map(" ".join), max_size=12).map("\n".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(TEXT, LINES))
def test_ss_never_crashes(text: str) -> None:
    for listener in parse_ss(text):
        assert 0 < listener.port < 65536
        assert listener.subject.startswith(("tcp ", "udp "))


@settings(max_examples=300, deadline=None)
@given(st.one_of(TEXT, LINES, st.lists(st.tuples(FIELD, st.integers(-5, 10**12), st.integers(-5, 10**12),
                                                  st.integers(-5, 200), FIELD), max_size=8).map(
    lambda rows: "\n".join(f"{a} {b} {c} 0 {d}% /{e}" for a, b, c, d, e in rows))))
def test_df_never_crashes(text: str) -> None:
    for row in parse_df(text):
        assert row.mount.startswith("/") and row.total >= 0 and row.used >= 0


@settings(max_examples=300, deadline=None)
@given(st.one_of(TEXT, LINES, st.lists(st.tuples(st.from_regex(r"[a-z@.\-]{1,20}\.(service|timer)", fullmatch=True),
                                                  FIELD), max_size=6).map(
    lambda rows: "\n".join(f"{u} loaded failed failed {d}" for u, d in rows))))
def test_systemctl_never_crashes(text: str) -> None:
    for unit in parse_failed_units(text):
        assert unit.unit and " " not in unit.unit


AIDE_PIECES = st.sampled_from([
    "AIDE found differences between database and filesystem!!", "Summary:", "  Added entries:\t3",
    "  Removed entries:\tx", "  Changed entries:\t2", "Added entries:", "Changed entries:", "Removed entries:",
    "f++++++++++++++++: /etc/x", "f   ...    .C... : /etc/passwd", "Detailed information about changes:",
    "All files match AIDE database. Looks okay!", "Start timestamp: 2024-03-01", "ERROR: cannot open", "",
])


@settings(max_examples=300, deadline=None)
@given(st.one_of(TEXT, st.lists(st.one_of(AIDE_PIECES, TEXT), max_size=30).map("\n".join)))
def test_aide_never_crashes(text: str) -> None:
    report = parse_aide(text)
    assert report.clean in (True, False, None)
    assert report.total >= 0


@settings(max_examples=200, deadline=None)
@given(st.one_of(TEXT, LINES))
def test_the_other_parsers_never_crash(text: str) -> None:
    now = dt.datetime(2024, 3, 5, tzinfo=dt.UTC)
    parse_apt_upgradable(text)
    parse_chrony_tracking(text)
    parse_nft_ruleset(text)
    parse_iptables_save(text)
    parse_last(text)
    parse_list_boots(text)
    parse_list_boots("[" + text)
    parse_find_listing(text.replace("|", "\0"))
    parse_sha256sums(text.replace("|", "\0"))
    split_sections(text, "@@m")
    for line in text.splitlines():
        syslog_time(line, now)
