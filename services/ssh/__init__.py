"""SSH with strict host key trust, a pool of kept-alive connections, tunnels and SFTP.

>>> pool = SshPool()
>>> endpoint = system_endpoint(spec, known_hosts=Path("~/.local/share/panel/known_hosts"))
>>> pool.run(endpoint, "uptime").text()
"""

from services.ssh.endpoint import SshEndpoint, initramfs_endpoint, quote_argv, system_endpoint
from services.ssh.pool import SshPool, SshRunner, Tunnel

__all__ = [
    "SshEndpoint",
    "SshPool",
    "SshRunner",
    "Tunnel",
    "initramfs_endpoint",
    "quote_argv",
    "system_endpoint",
]
