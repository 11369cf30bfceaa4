"""Incident triage: logs, systemd units, processes, a terminal command line and a fleet timeline.

Plain Python over a :class:`services.runner.CommandRunner` (one round trip per read) or, for
live follows, over :meth:`services.ssh.SshPool.run` with ``on_output``. No Qt here.
"""
