"""The ONE POSIX sh script that gathers every host check of a server in a single round trip.

The script is fixed text; the few values it needs (watched paths, the MySQL address, a time) go
in through :func:`shlex.quote`. Its output is cut into sections by lines ``<marker> <name> [<arg>]``
whose marker holds a random nonce, so no file name or log line can fake a section. Every command
that may be missing is looked up first (a ``NAME.missing`` section), and every command's exit
status and standard error are kept (``NAME.rc``, ``NAME.err``) so that a check that cannot run
says why.
"""

from __future__ import annotations

import re
import secrets
import shlex
from dataclasses import dataclass

from services.checks.files import WatchPlan

FAILED_LOGIN_PATTERN = r"Failed [a-z-]+ for |Invalid user |authentication failure"
ERR_BYTES = 2000


def new_marker() -> str:
    return "@@chk-" + secrets.token_hex(8)


@dataclass(frozen=True)
class ScriptOptions:
    watch: WatchPlan | None = None
    mysql: tuple[str, int] | None = None  # host and port, as seen from the server
    aide_timeout: int = 0  # seconds; 0: only read the daily report, never run aide --check
    extra: tuple[tuple[str, str], ...] = ()  # (section name, a sub-script run in a subshell)


_HEAD = r"""
M={marker}
sep() {{ printf '\n%s %s\n' "$M" "$*"; }}
have() {{ command -v "$1" >/dev/null 2>&1; }}
T=$(mktemp -d 2>/dev/null) || T=
trap '[ -n "$T" ] && rm -rf "$T"' EXIT
[ -n "$T" ] || T=/tmp/panel-checks.$$ && mkdir -p "$T" 2>/dev/null
# run NAME COMMAND...: sections NAME.rc (exit status), NAME (stdout) and NAME.err (stderr)
run() {{
  n=$1; shift
  "$@" >"$T/o" 2>"$T/e"; rc=$?
  sep "$n.rc" "$rc"; sep "$n"; cat "$T/o"; sep "$n.err"; head -c {err} "$T/e"
}}
sep time "$(date +%s 2>/dev/null)"
sep uptime; cat /proc/uptime 2>/dev/null
sep loadavg; cat /proc/loadavg 2>/dev/null
sep nproc; nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null
sep meminfo; grep -E '^(MemTotal|MemAvailable):' /proc/meminfo 2>/dev/null
sep kernel; uname -r 2>/dev/null
sep debian; cat /etc/debian_version 2>/dev/null
sep bootid; cat /proc/sys/kernel/random/boot_id 2>/dev/null
sep reboot
if [ -e /var/run/reboot-required ]; then echo yes; cat /var/run/reboot-required.pkgs 2>/dev/null; else echo no; fi
if [ -d /run/systemd/system ]; then sep systemd yes; else sep systemd no; fi
sep user "$(id -un 2>/dev/null)"
if have ss; then run ss ss -Htlnup; else sep ss.missing ss; fi
if have systemctl; then run units systemctl list-units --state=failed --no-legend --plain --no-pager --full
else sep units.missing systemctl; fi
if have df; then
  run df df -P -k -l -x tmpfs -x devtmpfs -x squashfs -x overlay
  run inodes df -P -i -l -x tmpfs -x devtmpfs -x squashfs -x overlay
else sep df.missing df; sep inodes.missing df; fi
if have timedatectl; then run timedatectl timedatectl show; fi
if have chronyc; then run chrony chronyc -n tracking; fi
if have apt; then
  run apt env LC_ALL=C apt list --upgradable
  sep aptlists
  find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -printf '%T@\n' 2>/dev/null | sort -n | tail -n 1
else sep apt.missing apt; fi
J=no
for d in /var/log/journal /run/log/journal; do
  if [ -d "$d" ] && [ -n "$(find "$d" -name '*.journal' 2>/dev/null | head -n 1)" ]; then J=yes; fi
done
sep journalfiles "$J"
P={failpat}
if have journalctl && [ "$J" = yes ]; then
  journalctl -q --no-pager -o short-unix --since -1h -u ssh -u sshd >"$T/j" 2>"$T/je"; rc=$?
  sep journal.rc "$rc"; sep journal.err; head -c {err} "$T/je"
  sep journal.count; grep -c -E "$P" "$T/j"
  sep journal; grep -E "$P" "$T/j" | tail -n 20
fi
if [ -e /var/log/auth.log ]; then
  if [ -r /var/log/auth.log ]; then sep authlog; tail -n 50000 /var/log/auth.log | grep -E "$P" | tail -n 5000
  else sep authlog.denied; fi
fi
if have nft; then run nft nft list ruleset; fi
if have iptables-save; then run iptables iptables-save; fi
if have last; then run last env TZ=UTC last -x --time-format iso reboot shutdown; fi
if have journalctl && [ "$J" = yes ]; then run boots env TZ=UTC journalctl --list-boots --no-pager -q -o json; fi
"""

_MYSQL = r"""
MH={host}; MP={port}
if have bash && have timeout; then
  timeout 5 bash -c 'exec 3<>"/dev/tcp/$1/$2" && dd bs=512 count=1 <&3 2>/dev/null' mysql "$MH" "$MP" >"$T/m" 2>"$T/me"
  rc=$?
  sep mysql.rc "$rc"; sep mysql; tr -c '[:print:]' '.' <"$T/m" | head -c 300; sep mysql.err; head -c 500 "$T/me"
else sep mysql.missing "bash or timeout"; fi
"""

_WATCH = r"""
if have find; then
  find {paths} -xdev -printf '%y\t%m\t%u\t%g\t%s\t%T@\t%C@\t%p\0%l\0' >"$T/w" 2>"$T/we"; rc=$?
  sep watch.rc "$rc"; sep watch.err; head -c 4000 "$T/we"; sep watch.list; cat "$T/w"
  if have sha256sum && have xargs; then
    : >"$T/he"
    sep watch.hash
    {full}
    {incremental}
    sep watch.hasherr; head -c 4000 "$T/he"
  else sep watch.hash.missing "sha256sum or xargs"; fi
else sep watch.missing find; fi
"""

_AIDE = r"""
if have aide; then
  if [ -r /var/log/aide/aide.log ]; then
    sep aide.log "$(stat -c %Y /var/log/aide/aide.log 2>/dev/null)"; tail -c 200000 /var/log/aide/aide.log
  elif [ {timeout} -gt 0 ]; then run aide timeout {timeout} nice aide --check
  else sep aide.nolog; fi
fi
"""


def _words(paths: tuple[str, ...]) -> str:
    return " ".join(shlex.quote(p) for p in paths)


def build_host_script(marker: str, options: ScriptOptions) -> str:
    """The whole script. Watched paths must be absolute (the caller checks)."""
    parts = [_HEAD.format(marker=shlex.quote(marker), err=ERR_BYTES, failpat=shlex.quote(FAILED_LOGIN_PATTERN))]
    if options.mysql is not None:
        host, port = options.mysql
        parts.append(_MYSQL.format(host=shlex.quote(host), port=int(port)))
    watch = options.watch
    if watch is not None and watch.paths:
        full = tuple(watch.full) if watch.since is not None else tuple(watch.paths)
        incremental = tuple(p for p in watch.paths if p not in full)
        hash_cmd = "-type f -print0 2>/dev/null | xargs -0r sha256sum -z -- 2>>\"$T/he\""
        full_line = f"find {_words(full)} -xdev {hash_cmd}" if full else ":"
        since = int(watch.since) if watch.since is not None else 0
        incremental_line = (f"find {_words(incremental)} -xdev -newerct @{since} {hash_cmd}"
                            if incremental else ":")
        parts.append(_WATCH.format(paths=_words(watch.paths), full=full_line, incremental=incremental_line))
    parts.append(_AIDE.format(timeout=max(0, int(options.aide_timeout))))
    for name, script in options.extra:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise ValueError(f"bad section name {name!r}")
        parts.append(f"sep extra:{name}\n(\n{script}\n)\n")
    parts.append("sep end\n")
    return "".join(parts)
