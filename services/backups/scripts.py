"""The POSIX sh scripts that read and act on a repository in one round trip each.

Scripts are fixed text; every value goes in through :func:`shlex.quote` (or :func:`sh_path`).
Their output is cut into sections by lines ``<marker> <name> [<arg>]`` (see
:func:`services.backups.parsers.split_sections`); the marker holds a random nonce so that no
file's contents can fake a section.
"""

from __future__ import annotations

import secrets
import shlex
from dataclasses import dataclass

# rdiff-backup 2.0 (Debian bullseye) parses options with getopt and says "Bad commandline options:
# option --api-version not recognized"; 2.1 and later say "API version 201 must be between ...".
LEGACY_PATTERNS = ("commandline options", "not recognized", "api version")

ERROR_LOG_LINES = 200  # the newest error_log can be huge; the panel shows its beginning and a count
ERROR_LINE_CHARS = 500

RESTORE_PREFIX = "panel-restore."


def new_marker() -> str:
    return "@@panel-" + secrets.token_hex(8)


@dataclass(frozen=True)
class Raw:
    """A piece of shell text that is NOT quoted (a variable such as ``"$D"/name``): never user data."""

    text: str


def sh_path(path: str) -> str:
    """A path as one shell word. ``~/x`` stays relative to the remote home; a leading ``-`` cannot
    pass for an option."""
    if path == "~":
        return '"$HOME"'
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:])
    if path.startswith("-"):
        path = "./" + path
    return shlex.quote(path)


def sh_command(*parts: str | Raw) -> str:
    return " ".join(part.text if isinstance(part, Raw) else shlex.quote(part) for part in parts)


# The common head: the marker, a private temporary folder for stderr captures, and helpers.
_HEAD = r"""
M={marker}
unset CDPATH
sep() {{ printf '\n%s %s\n' "$M" "$*"; }}
T=$(mktemp -d 2>/dev/null) || T=
trap '[ -n "$T" ] && rm -rf "$T"' EXIT
if command -v rdiff-backup >/dev/null 2>&1; then HAVE=yes; else HAVE=no; fi
# run_rdiff NAME NEW_COMMAND [OLD_COMMAND]: run rdiff-backup with the API 201 command line; if
# this rdiff-backup does not know it, run the old (2.0) one instead. Prints NAME-rc, NAME-out and
# NAME-err sections.
run_rdiff() {{
  name=$1; new=$2; old=$3; cli=api201
  if [ -n "$T" ]; then
    eval "$new" >"$T/o" 2>"$T/e"; rc=$?
    if [ "$rc" -ne 0 ] && [ -n "$old" ] && grep -q -i {legacy} "$T/e"; then
      cli=legacy
      eval "$old" >"$T/o" 2>"$T/e"; rc=$?
    fi
    sep "$name-rc" "$rc $cli"; sep "$name-out"; cat "$T/o"; sep "$name-err"; cat "$T/e"
  else
    sep "$name-rc" "? $cli"; sep "$name-out"; eval "$new" 2>&1
  fi
}}
"""


def script_head(marker: str) -> str:
    legacy = " ".join(f"-e {shlex.quote(pattern)}" for pattern in LEGACY_PATTERNS)
    return _HEAD.format(marker=shlex.quote(marker), legacy=legacy)


# Reads one repository: checks the path, lists increments, and prints every session_statistics
# file, the newest error_log and the current_mirror markers. Called once per repository.
_READ_REPO = r"""
read_repo() {{
  R=$2; D=$R/rdiff-backup-data
  sep repo "$1"
  sep rdiff-backup "$HAVE"
  if [ ! -e "$R" ]; then
    # missing, or hidden behind a folder we may not enter: say which
    p=$R
    while [ "$p" != / ] && [ "$p" != . ] && [ ! -e "$p" ]; do p=$(dirname -- "$p"); done
    if [ -d "$p" ] && [ ! -x "$p" ]; then sep path denied-above; else sep path missing; fi
    return
  fi
  if [ ! -d "$R" ]; then sep path not-a-folder; return; fi
  if [ ! -r "$R" ] || [ ! -x "$R" ]; then sep path denied; return; fi
  if [ ! -d "$D" ]; then sep path not-a-repository; return; fi
  if [ ! -r "$D" ] || [ ! -x "$D" ]; then sep path denied; return; fi
  sep path ok
  # rdiff-backup 2.2 does not accept a repository path that is itself a symbolic link
  R=$(cd -- "$R" && pwd -P) || R=$2
  D=$R/rdiff-backup-data
  # rdiff-backup takes most of the time (its start alone is ~0.2 s): it lists in the background,
  # into a file, while the statistics are read; its sections follow theirs
  LISTED=
  if [ "$HAVE" = yes ]; then
    if [ -n "$T" ]; then
      list_increments >"$T/listed" 2>&1 &
      LISTED=$!
    else
      list_increments
    fi
  fi
  L=$(ls -1 -- "$D" 2>/dev/null | LC_ALL=C sort)
  set -- "$D"/session_statistics.*.data
  if [ -f "$1" ]; then
    awk -v m="$M" 'FNR == 1 {{ n = FILENAME; sub(/.*\//, "", n); printf "\n%s stats %s\n", m, n }} {{ print }}' "$@"
  fi
  for f in "$D"/session_statistics.*.gz; do
    [ -f "$f" ] && {{ sep stats "${{f##*/}}"; zcat -f -- "$f"; }}
  done
  E=$(printf '%s\n' "$L" | grep '^error_log\.' | tail -n 1)
  if [ -n "$E" ]; then
    sep errorlog "$E"
    zcat -f -- "$D/$E" | awk -v m="$M" -v max={lines} -v width={width} \
      'NR <= max {{ print substr($0, 1, width) }} END {{ printf "\n%s errorlog-lines %d\n", m, NR }}'
  fi
  if [ -n "$LISTED" ]; then wait "$LISTED"; cat "$T/listed"; fi
  # the last section: without it the reader knows the answer was cut off
  sep mirrors
  printf '%s\n' "$L" | grep '^current_mirror\.'
}}
# list_increments: the sessions of $R, with sizes when asked (2.0 lists sizes with another command).
list_increments() {{
  run_rdiff list "rdiff-backup --api-version 201 --parsable-output list increments {size_new} \"\$R\"" \
    "rdiff-backup --parsable-output -l \"\$R\""
  if [ "$cli" = legacy ] && [ {with_sizes} = yes ]; then
    run_rdiff legacy-sizes "TZ=UTC rdiff-backup --list-increment-sizes \"\$R\""
  fi
}}
"""


def read_script(marker: str, paths: list[str], *, with_sizes: bool = True) -> str:
    """One script that reads every repository in ``paths`` (all on the same host).

    It runs in a subshell, so it can be embedded in a larger host script (the checks do): its
    functions, variables and EXIT trap do not leak into the surrounding script.
    """
    body = _READ_REPO.format(
        size_new="--size" if with_sizes else "",
        with_sizes="yes" if with_sizes else "no",
        lines=ERROR_LOG_LINES,
        width=ERROR_LINE_CHARS,
    )
    calls = "\n".join(f"read_repo {index} {sh_path(path)}" for index, path in enumerate(paths))
    return "(\n" + script_head(marker) + body + calls + "\n)\n"


def rdiff_script(marker: str, name: str, new: str, old: str | None, *, before: str = "", after: str = "") -> str:
    """A script that runs one rdiff-backup command (new command line, else the old one).

    ``new``/``old`` are already-quoted command lines (:func:`sh_command`); ``before`` may set shell
    variables they use. If rdiff-backup is missing the script prints a ``missing`` section instead.
    """
    return (
        "(\n"
        + script_head(marker)
        + 'if [ "$HAVE" = no ]; then sep missing; exit 0; fi\n'
        + before
        + f"\nrun_rdiff {shlex.quote(name)} {shlex.quote(new)} {shlex.quote(old or '')}\n"
        + after
        + "\n)\n"
    )
