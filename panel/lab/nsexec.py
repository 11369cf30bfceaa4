"""Run a program with a private /etc/passwd, inside a mount namespace made by ``unshare``.

    unshare --mount --propagation private -- python -I nsexec.py HOST_NS PASSWD -- PROGRAM ARGS...

Why: dropbear 2022.83 reads ``~/.ssh/authorized_keys`` from the home directory in the passwd
database and has no option to look elsewhere. Bind-mounting a copy of /etc/passwd whose home for
the current user is a lab folder, in a mount namespace of dropbear's own, points it at the lab's
keys without ever touching the real user's ``~/.ssh`` or the host's /etc/passwd.
Stdlib only: it runs before anything else in the namespace.
"""

from __future__ import annotations

import os
import subprocess
import sys


def main(argv: list[str]) -> int:
    if len(argv) < 5 or argv[3] != "--":
        sys.stderr.write("usage: nsexec.py HOST_MOUNT_NAMESPACE PASSWD_FILE -- PROGRAM [ARGS...]\n")
        return 2
    host_namespace, passwd, program = argv[1], argv[2], argv[4:]
    # Refuse to mount anything unless we really are in a namespace of our own.
    if os.readlink("/proc/self/ns/mnt") == host_namespace:
        sys.stderr.write("nsexec: not in a private mount namespace; refusing to mount over /etc/passwd\n")
        return 1
    subprocess.run(["mount", "--bind", passwd, "/etc/passwd"], check=True)
    os.execv(program[0], program)  # noqa: S606 - an exec, not a shell: becomes dropbear, same pid
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv))
