"""The parsers: exact on real rdiff-backup output, and no crash on ANY input (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from services.backups import parsers
from services.backups.models import FileChange
from services.backups.reader import RepoTarget, parse_read_output
from services.backups.scripts import new_marker, read_script
from services.inventory import BackupSpec
from services.runner import LocalRunner

# --- real output, as rdiff-backup 2.2.2 printed it -------------------------------------------------------

LISTING = """NOTE:    Repository couldn't be locked by file repo/rdiff-backup-data/lock.yml,
         probably because the repository was never written with API >= 201,
         ignoring
---
- size: 61
  time: 1700000000
  total_size: 16514
- size: 63
  time: 1700086400
  total_size: 16453
- size: 16390
  time: 1700172800
  total_size: 16390
...

"""

STATS = """StartTime 1700086400.00 (Wed Nov 15 22:13:20 2023)
EndTime 1700086400.93 (Wed Nov 15 22:13:20 2023)
ElapsedTime 0.93 (0.93 seconds)
SourceFiles 7
SourceFileSize 8 (8 bytes)
MirrorFiles 6
MirrorFileSize 4 (4 bytes)
NewFiles 1
NewFileSize 2 (2 bytes)
DeletedFiles 0
DeletedFileSize 0 (0 bytes)
ChangedFiles 3
ChangedSourceSize 4 (4 bytes)
ChangedMirrorSize 2 (2 bytes)
IncrementFiles 4
IncrementFileSize 61 (61 bytes)
TotalDestinationSizeChange 65 (65 bytes)
Errors 2
"""

# rdiff-backup 2.0's --list-increment-sizes (manage.ListIncrementSizes): mirror first, newest to oldest
TABLE_20 = """        Time                       Size        Cumulative size
-----------------------------------------------------------------------------
Thu Nov 16 22:13:20 2023         16.0 KB           16.0 KB   (current mirror)
Wed Nov 15 22:13:20 2023         63 bytes           16.1 KB
Tue Nov 14 22:13:20 2023         61 bytes           16.1 KB
"""

# 2.2's old command line: oldest first, mirror last
TABLE_22 = """          Time                 Size         Cumulative size
------------------------ ----------------- -----------------
Tue Nov 14 22:13:20 2023          61 bytes           16.1 KB
Wed Nov 15 22:13:20 2023          63 bytes           16.1 KB
Thu Nov 16 22:13:20 2023           16.0 KB           16.0 KB  (current mirror)
"""

CHANGED = """changed etc
new     etc/new
changed etc/passwd
deleted var/www/index.html
new     var/www/ two spaces.txt
"""

COMPARE = """---
- path: .
  reason: changed
- path: new
  reason: new
- path: passwd
  reason: changed
- path: gone
  reason: deleted
...

"""

FILE_STATS = """# Format of each line in file statistics file:
# Filename Changed SourceSize MirrorSize IncrementSize
. 0 0 0 NA
etc 0 0 0 NA
etc/new 1 2 NA 0
etc/passwd 1 4 2 61
var/www/a file 1 2 7 NA
var/www/index.html 1 NA 2 63
var/www/same 0 2 2 NA
"""

VERIFY_ERR = """ERROR:   Computed SHA1 digest of file etc/passwd
         '15546de8c3b03e70ceec10a49f271b96b745a0a6' doesn't match recorded
         digest of '6e9e03d610a57120f10fa25013cdc29dde76ab7e'. Your backup
         repository may be corrupted!
ERROR:   Verification found 1 potentially corrupted files
WARNING: Action verify failed on one or more files, see previous messages for
         details
"""

SAMPLES = [LISTING, STATS, TABLE_20, TABLE_22, CHANGED, COMPARE, FILE_STATS, VERIFY_ERR]


def test_listing() -> None:
    points = parsers.parse_increments_yaml(LISTING)
    assert [(p.time, p.size, p.total_size) for p in points] == [
        (1700000000, 61, 16514), (1700086400, 63, 16453), (1700172800, 16390, 16390)
    ]
    # the same through the YAML parser (the fast path gives up on anything unusual)
    quoted = LISTING.replace("size: 61", "size: !!int '61'")
    assert parsers.parse_increments_yaml(quoted) == points


def test_session_statistics() -> None:
    stats = parsers.parse_session_statistics(STATS)
    assert stats.complete
    assert stats.start_time == datetime(2023, 11, 15, 22, 13, 20, tzinfo=UTC)
    assert stats.elapsed_seconds == 0.93
    assert (stats.source_files, stats.new_files, stats.changed_files, stats.errors) == (7, 1, 3, 2)
    assert stats.increment_file_size == 61 and stats.total_destination_size_change == 65
    truncated = parsers.parse_session_statistics(STATS[:200])
    assert not truncated.complete and truncated.source_files == 7 and truncated.errors is None


def test_both_size_tables() -> None:
    old = parsers.parse_legacy_sizes(TABLE_20)
    new = parsers.parse_legacy_sizes(TABLE_22)
    assert [p.time for p in old] == [1700000000, 1700086400, 1700172800] == [p.time for p in new]
    assert [(p.size, p.total_size) for p in old] == [(p.size, p.total_size) for p in new]
    assert old[0].size == 61 and old[-1].size == round(16.0 * 1024) and old[0].approximate


def test_byte_summaries() -> None:
    assert parsers.parse_byte_summary("1 byte") == 1
    assert parsers.parse_byte_summary("61 bytes") == 61
    assert parsers.parse_byte_summary("2.00 GB") == 2 * 1024**3
    assert parsers.parse_byte_summary("16.1 KB") == round(16.1 * 1024)
    assert parsers.parse_byte_summary("lots") is None


def test_legacy_listing() -> None:
    assert parsers.parse_legacy_increments("1700000000 directory\n1700086400 directory\nnoise\n") == [
        1700000000, 1700086400
    ]


def test_stamps() -> None:
    assert parsers.parse_stamp("2023-11-14T22:13:20Z") == 1700000000
    assert parsers.parse_stamp("2023-11-14T23:13:20+01:00") == 1700000000
    assert parsers.parse_stamp("2023-11-14T17-13-20-05-00") == 1700000000  # --use-compatible-timestamps
    assert parsers.parse_stamp("2023-13-14T22:13:20Z") is None
    assert parsers.stamp_of("session_statistics.2023-11-14T22:13:20Z.data", "session_statistics") == (
        "2023-11-14T22:13:20Z"
    )
    assert parsers.stamp_of("error_log.x.data", "error_log") is None


def test_changes() -> None:
    assert parsers.parse_changed_files(CHANGED) == [
        FileChange("etc", "changed"),
        FileChange("etc/new", "added"),
        FileChange("etc/passwd", "changed"),
        FileChange("var/www/index.html", "removed"),
        FileChange("var/www/ two spaces.txt", "added"),
    ]
    assert parsers.parse_compare_output(COMPARE) == [
        FileChange(".", "changed"), FileChange("new", "added"), FileChange("passwd", "changed"),
        FileChange("gone", "removed"),
    ]
    assert parsers.parse_compare_output("new: a b\ndeleted: c\n") == [FileChange("a b", "added"),
                                                                     FileChange("c", "removed")]


def test_file_statistics_fold() -> None:
    first = parsers.parse_file_statistics_changes(FILE_STATS)
    assert [c.path for c in first] == ["etc/new", "etc/passwd", "var/www/a file", "var/www/index.html"]
    later = parsers.parse_file_statistics_changes("etc/new 1 NA 2 5\nvar/www/index.html 1 3 NA NA\n")
    assert parsers.net_changes([first, later]) == [
        FileChange("etc/passwd", "changed"),
        FileChange("var/www/a file", "changed"),
        FileChange("var/www/index.html", "changed"),  # removed, then back
    ]  # etc/new came and went: no net change


def test_log_messages_are_joined() -> None:
    messages = parsers.parse_log_messages(VERIFY_ERR)
    assert len(messages) == 3
    assert messages[0].startswith("ERROR: Computed SHA1 digest of file etc/passwd '1554")
    assert messages[0].endswith("may be corrupted!")


def test_sections_survive_bodies_without_final_newline() -> None:
    marker = "@@panel-0011223344556677"
    text = f"\n{marker} a 1\nbody line\n{marker} b\nno newline\n{marker} c x y\n"
    assert parsers.split_sections(text, marker) == [
        parsers.Section("a", "1", "body line"),
        parsers.Section("b", "", "no newline"),
        parsers.Section("c", "x y", ""),
    ]
    assert parsers.split_sections(f"@@panel-other a\n{text}", "@@panel-other") != []
    assert parsers.split_sections("whatever", "") == []


def test_prefix() -> None:
    assert parsers.under_prefix("etc/passwd", "etc") and parsers.under_prefix("etc", "/etc/")
    assert not parsers.under_prefix("etcetera", "etc") and parsers.under_prefix("x", None)


# --- no crash on any input -------------------------------------------------------------------------------

ANY_TEXT = st.one_of(
    st.text(),
    st.binary().map(lambda b: b.decode("utf-8", errors="replace")),
    st.binary().map(lambda b: b.decode("latin-1")),
    st.sampled_from(SAMPLES).flatmap(lambda s: st.integers(0, len(s)).map(lambda n: s[:n])),  # truncated
    st.lists(st.sampled_from([*SAMPLES, "---\n", "...\n", "- ", ": ", "\x00", "&a [*a]", "!!python/none"]))
    .map("".join),
)


@given(ANY_TEXT)
@example("---\n- time: 99999999999999999999\n  size: -1\n...\n")
@example("---\n- time: 1e400\n...\n")
@example("---\n- !!binary AAAA\n")
@example("---\n- &a [*a]\n")
@example("StartTime nan (x)\nErrors 1e999999\n")
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_no_parser_crashes(text: str) -> None:
    parsers.parse_increments_yaml(text)
    parsers.parse_legacy_increments(text)
    parsers.parse_legacy_sizes(text)
    parsers.parse_byte_summary(text)
    parsers.parse_session_statistics(text)
    parsers.parse_stamp(text)
    parsers.stamp_of(text, "error_log")
    parsers.parse_changed_files(text)
    parsers.parse_compare_output(text)
    parsers.parse_file_statistics_changes(text)
    parsers.parse_log_messages(text)
    parsers.first_line(text)
    parsers.split_sections(text, "@@panel-x")


TARGETS = [RepoTarget("app1", BackupSpec("local", "/r1")), RepoTarget("app1", BackupSpec("other", "/r2"))]
NOW = datetime(2024, 1, 6, tzinfo=UTC)


@given(ANY_TEXT)
@settings(max_examples=200, deadline=None)
def test_read_output_never_crashes(text: str) -> None:
    marker = "@@panel-x"
    # sprinkle real section names in, so the repository builder sees odd bodies, not just no sections
    noisy = text.replace("\n", f"\n{marker} ", 3)
    for candidate in (text, noisy, f"{marker} repo 0\n{marker} path ok\n{marker} stats x\n" + text):
        found = parse_read_output(candidate, marker, TARGETS, where="h", now=NOW)
        assert len(found) == 2 and all(r.to_json() for r in found)


def test_every_prefix_of_real_reader_output(repos: Any) -> None:
    """A connection that drops mid-way gives a prefix of the script's output: never a crash, and the
    repository is either complete, marked unreadable, or carries what arrived."""
    marker = new_marker()
    result = LocalRunner().run_script(read_script(marker, [str(repos.main), str(repos.errors_last)]))
    text = result.text()
    targets = [RepoTarget("app1", BackupSpec("local", str(repos.main))),
               RepoTarget("app1", BackupSpec("errors", str(repos.errors_last)))]
    full = parse_read_output(text, marker, targets, where="h", now=NOW)
    assert [len(r.sessions) for r in full] == [5, 4]
    for end in range(len(text)):  # every cut: where one falls in a line must not matter
        cut = parse_read_output(text[:end], marker, targets, where="h", now=NOW)
        assert len(cut) == 2
        for repo in cut:
            repo.to_json()
            assert len(repo.sessions) <= 5


def test_a_cut_off_answer_says_so(repos: Any) -> None:
    marker = new_marker()
    text = LocalRunner().run_script(read_script(marker, [str(repos.main)])).text()
    target = [RepoTarget("app1", BackupSpec("local", str(repos.main)))]
    (cut,) = parse_read_output(text[: text.index(" mirrors")], marker, target, where="h", now=NOW)
    assert cut.problem is not None and "cut off" in cut.problem and len(cut.sessions) == 5
    (early,) = parse_read_output(text[: text.index(" path ok") + 9], marker, target, where="h", now=NOW)
    assert early.problem is not None and "cut off" in early.problem and early.sessions == ()
