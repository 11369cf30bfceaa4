"""The check ids: stable names that key alerts in the store and appear in ``check --json``."""

SERVER = "server.state"  # down, locked, host key trouble
REBOOT = "server.reboot"  # rebooted without an audited reboot or unlock
CHECKS = "server.checks"  # the checks script itself
PORTS = "ports.unexpected"
FILES = "files.changed"
AIDE = "files.aide"
UNITS = "units.failed"
DISK = "disk.space"
INODES = "disk.inodes"
MEMORY = "memory"
LOAD = "load"
CLOCK = "clock.sync"
SECURITY_UPDATES = "updates.security"
REBOOT_REQUIRED = "updates.reboot"
SSH_LOGINS = "ssh.failed_logins"
FIREWALL = "firewall.empty"
MYSQL = "mysql.reachable"
DOWNTIME = "downtime.week"
BACKUP = "backups"
TLS = "tls.expiry"
STRIPE_FAILED = "stripe.failed_payments"
STRIPE_PAST_DUE = "stripe.past_due"
STRIPE_API = "stripe.api"
MAILGUN_FAILURES = "mailgun.failure_rate"
MAILGUN_UNVERIFIED = "mailgun.unverified"
MAILGUN_API = "mailgun.api"
CLOUDFLARE_ZONE = "cloudflare.zone"
CLOUDFLARE_ATTACK = "cloudflare.attack"
CLOUDFLARE_API = "cloudflare.api"

HOST_CHECKS = (CHECKS, REBOOT, PORTS, FILES, AIDE, UNITS, DISK, INODES, MEMORY, LOAD, CLOCK, SECURITY_UPDATES,
               REBOOT_REQUIRED, SSH_LOGINS, FIREWALL, MYSQL, DOWNTIME)
