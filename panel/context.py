"""The application core that the CLI and the window share: inventory, store, secrets and SSH pool."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from panel import paths
from panel.config import load_config, set_server_key
from panel.secrets import SecretStore
from panel.store import Store
from services.cancel import NEVER_CANCELLED, CancelToken
from services.errors import PanelError
from services.hostkeys import PublicKey, add_known_host, replace_known_host
from services.inventory import Inventory, ServerSpec
from services.probe import ServerStatus, probe_many, probe_server
from services.ssh import SshEndpoint, SshPool, SshRunner, initramfs_endpoint, system_endpoint
from services.ssh.connect import offered_host_key


@dataclass
class PanelContext:
    config_path: Path
    inventory: Inventory
    store: Store
    secrets: SecretStore
    pool: SshPool = field(default_factory=SshPool)
    known_hosts: Path = field(default_factory=paths.known_hosts_path)
    initramfs_known_hosts: Path = field(default_factory=paths.initramfs_known_hosts_path)
    # Per-session helpers that features keep on the context (panel.mysql keeps its SSH tunnels
    # here); close() closes each of them, newest first, before the SSH pool.
    resources: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def open(cls, config_path: Path, *, store: Store | None = None, secrets: SecretStore | None = None
             ) -> PanelContext:
        inventory = load_config(config_path)
        return cls(config_path, inventory, store or Store(paths.store_path()), secrets or SecretStore())

    def reload(self) -> None:
        """Re-read the config (after an edit); the pool keeps its connections."""
        self.inventory = load_config(self.config_path)

    def close(self) -> None:
        resources, self.resources = list(self.resources.values()), {}
        for resource in reversed(resources):
            with contextlib.suppress(Exception):
                resource.close()
        self.pool.close_all()

    # --- endpoints ---------------------------------------------------------------------------------

    def spec(self, server: str) -> ServerSpec:
        return self.inventory.server(server)

    def system_endpoint(self, server: str) -> SshEndpoint:
        return system_endpoint(self.spec(server), known_hosts=self.known_hosts)

    def initramfs_endpoint(self, server: str) -> SshEndpoint | None:
        spec = self.spec(server)
        if spec.unlock_port is None:
            return None
        return initramfs_endpoint(spec, known_hosts=self.initramfs_known_hosts, system=self.system_endpoint(server))

    def runner(self, server: str) -> SshRunner:
        return SshRunner(self.pool, self.system_endpoint(server))

    # --- probing -------------------------------------------------------------------------------------

    def probe(self, server: str, cancel: CancelToken = NEVER_CANCELLED) -> ServerStatus:
        return probe_server(self.pool, self.system_endpoint(server), self.initramfs_endpoint(server), cancel=cancel)

    def probe_all(self, cancel: CancelToken = NEVER_CANCELLED) -> list[ServerStatus]:
        names = list(self.inventory.servers)
        return probe_many(self.pool, [(self.system_endpoint(n), self.initramfs_endpoint(n)) for n in names],
                          cancel=cancel)

    # --- trust -----------------------------------------------------------------------------------------

    def _trust_file(self, endpoint: str) -> Path:
        return self.initramfs_known_hosts if endpoint == "initramfs" else self.known_hosts

    def _address(self, server: str, endpoint: str) -> tuple[str, int]:
        chosen = self.initramfs_endpoint(server) if endpoint == "initramfs" else self.system_endpoint(server)
        if chosen is None:
            raise ValueError(f"{server} has no {endpoint} endpoint")
        return chosen.host, chosen.port

    def trust_host_key(self, server: str, endpoint: str, public_key: str) -> None:
        """Trust an unknown key after the operator compared its fingerprint. Audited."""
        key = PublicKey.parse(public_key)
        host, port = self._address(server, endpoint)
        try:
            add_known_host(self._trust_file(endpoint), host, port, key)
        except Exception as error:
            self.store.audit("host-key.trust", server, "refused", f"{endpoint} {key.fingerprint}: {error}")
            raise
        self.store.audit("host-key.trust", server, "ok", f"{endpoint} key {key.key_type} {key.fingerprint}")

    def offered_key(self, server: str, endpoint: str, cancel: CancelToken = NEVER_CANCELLED) -> PublicKey:
        chosen = self.initramfs_endpoint(server) if endpoint == "initramfs" else self.system_endpoint(server)
        if chosen is None:
            raise PanelError(f"{server} has no unlock_port, so it has no initramfs key.")
        return offered_host_key(chosen, cancel)

    def replace_host_key(self, server: str, endpoint: str, public_key: str) -> None:
        """The explicit "replace pinned key" action of Settings. Audited with old and new fingerprints.

        A pin in the config is rewritten there (comments kept); otherwise the panel's known_hosts.
        """
        key = PublicKey.parse(public_key)
        host, port = self._address(server, endpoint)
        spec = self.spec(server)
        config_key = "unlock_host_key" if endpoint == "initramfs" else "host_key"
        config_pin = spec.unlock_host_key if endpoint == "initramfs" else spec.host_key
        if config_pin:
            old = [PublicKey.parse(config_pin)]
            set_server_key(self.config_path, server, config_key, key.line())
            self.reload()
        else:
            old = replace_known_host(self._trust_file(endpoint), host, port, key)
        before = ", ".join(k.fingerprint for k in old) or "none"
        self.store.audit("host-key.replace", server, "ok", f"{endpoint} key {before} -> {key.fingerprint}")
        dropped = self.initramfs_endpoint(server) if endpoint == "initramfs" else self.system_endpoint(server)
        if dropped is not None:
            self.pool.drop(dropped)
