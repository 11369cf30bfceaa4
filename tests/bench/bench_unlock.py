"""Unlock speed across an ocean: the panel against OpenSSH's ``ssh`` with the passphrase piped in.

    python tests/bench/bench_unlock.py [--rounds N] [--latency-ms 60]

Starts its own lab (servers only) behind the latency proxy (60 ms each way: a 120 ms round trip),
then, in the same run and alternating, reboots app1 into its initramfs, waits until dropbear is
reachable, and times the unlock:

- panel: ``services.unlock.unlock_server`` from the call until every volume is unlocked (its
  detect, host key check and send included);
- ssh:   ``ssh -o UserKnownHostsFile=... -o StrictHostKeyChecking=yes -i KEY -p PORT
  root@127.0.0.1 cryptroot-unlock < passfile``, from start to exit.

Prints the medians and their ratio (target: at most 1.2). Exits 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchlib import result

from panel.config import load_config
from panel.lab import procs
from panel.lab.fleet import Lab, LabInfo
from panel.lab.secrets import LUKS_PASSPHRASE
from services.ssh import SshPool, initramfs_endpoint, system_endpoint
from services.unlock import UnlockOptions, UnlockRequest, unlock_server

SERVER = "app1"
TARGET = 1.2


def wait_reachable(info: LabInfo) -> None:
    """Until dropbear answers through the proxy (the initramfs is reachable)."""
    port = info.server(SERVER).unlock_port
    assert port is not None

    def answers() -> bool:
        banner = procs.read_banner("127.0.0.1", port, timeout=2.0)
        return banner is not None and b"dropbear" in banner.lower()

    if not procs.wait_until(answers, 30, interval=0.05):
        raise SystemExit("the initramfs did not become reachable")


def time_panel(lab: Lab, info: LabInfo) -> float:
    lab.reboot(SERVER)
    wait_reachable(info)
    spec = load_config(info.config_path).server(SERVER)
    system = system_endpoint(spec, known_hosts=None)
    request = UnlockRequest(spec, system, initramfs_endpoint(spec, known_hosts=None, system=system),
                            passphrase=lambda volume: LUKS_PASSPHRASE)
    pool = SshPool()
    try:
        started = time.perf_counter()
        result = unlock_server(pool, request, UnlockOptions(wait_seconds=60, follow_boot=False))
        elapsed = time.perf_counter() - started
    finally:
        pool.close_all()
    assert result.volumes_unlocked, result
    lab.wait_up(SERVER)
    return elapsed


def time_ssh(lab: Lab, info: LabInfo, folder: Path) -> float:
    server = info.server(SERVER)
    lab.reboot(SERVER)
    wait_reachable(info)
    known_hosts = folder / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{server.unlock_port} {server.unlock_host_key}\n")
    passfile = folder / "passfile"
    passfile.write_bytes(LUKS_PASSPHRASE.encode())
    passfile.chmod(0o600)
    argv = ["ssh", "-F", "/dev/null", "-o", f"UserKnownHostsFile={known_hosts}", "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-i", str(info.client_key),
            "-p", str(server.unlock_port), f"{info.user}@127.0.0.1", "cryptroot-unlock"]
    try:
        with open(passfile, "rb") as stdin:
            started = time.perf_counter()
            completed = subprocess.run(argv, stdin=stdin, capture_output=True, timeout=60, check=False)
            elapsed = time.perf_counter() - started
    finally:
        passfile.unlink(missing_ok=True)
    if b"set up successfully" not in completed.stdout + completed.stderr:
        raise SystemExit(f"ssh did not unlock: {completed.stderr.decode(errors='replace')}")
    lab.wait_up(SERVER)
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--latency-ms", type=float, default=60.0, help="each way (60: a 120 ms round trip)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-unlock-") as directory:
        folder = Path(directory)
        lab = Lab(folder / "lab", latency_ms=args.latency_ms, boot_delay=0.2, parts=frozenset())
        try:
            info = lab.up()
            panel_times: list[float] = []
            ssh_times: list[float] = []
            for _ in range(args.rounds):
                panel_times.append(time_panel(lab, info))
                ssh_times.append(time_ssh(lab, info, folder))
        finally:
            lab.down()
    panel = statistics.median(panel_times)
    ssh = statistics.median(ssh_times)
    ratio = panel / ssh
    rtt = int(args.latency_ms * 2)
    print(f"# rounds: panel {' '.join(f'{t:.2f}' for t in panel_times)} | "
          f"ssh {' '.join(f'{t:.2f}' for t in ssh_times)}")
    result(f"unlock_{rtt}ms_vs_ssh_cryptroot_unlock", panel, ssh, f"<={TARGET}x", ok=ratio <= TARGET)
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
