"""The local demo fleet: real sshd, dropbear, LUKS2 headers, MariaDB and rdiff-backup on loopback,
plus stand-ins for the vendor APIs. Shared by ``python -m panel demo`` and the test fixtures."""
