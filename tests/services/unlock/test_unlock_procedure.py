"""The unlock procedure against the lab's real dropbear, cryptroot-unlock emulator and LUKS2 headers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from panel.config import load_config
from panel.lab.fleet import Lab, LabInfo
from panel.lab.secrets import LUKS_PASSPHRASE
from services.cancel import CancelToken
from services.errors import Cancelled, HostKeyMismatch
from services.hostkeys import PublicKey
from services.inventory import ServerSpec
from services.ssh import SshPool
from services.unlock import (
    Outcome,
    Step,
    UnlockOptions,
    UnlockTimeout,
    WrongPassphrase,
    reboot_and_unlock,
    unlock_many,
    unlock_server,
)
from tests.services.unlock.unlock_helpers import (
    CuttableProxy,
    Events,
    PrivateServer,
    entries_for,
    freeze_and_cut_first_session,
    other_key_line,
    request_for,
)

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("isolated_home")]

MakeServer = Callable[..., PrivateServer]


@pytest.fixture
def pool() -> Iterator[SshPool]:
    pool = SshPool()
    yield pool
    pool.close_all()


def lab_spec(lab: LabInfo, server: str) -> ServerSpec:
    return load_config(lab.config_path).server(server)


def test_the_right_passphrase_unlocks_and_the_system_comes_back(
    lab: LabInfo, lab_control: Lab, rebooted: Callable[[str], None], pool: SshPool, tmp_path: Path
) -> None:
    rebooted("app1")
    before = len(entries_for(lab.received_log, "app1"))
    events = Events()
    result = unlock_server(pool, request_for(lab_spec(lab, "app1"), tmp_path, LUKS_PASSPHRASE),
                           UnlockOptions(wait_seconds=30), progress=events)
    assert result.outcome is Outcome.UNLOCKED
    assert result.volumes_unlocked == ("root",)
    assert lab_control.phase("app1") == "up"
    # Exactly the passphrase's bytes arrived: no newline, nothing else, once.
    assert entries_for(lab.received_log, "app1")[before:] == [LUKS_PASSPHRASE.encode()]
    timeline = result.timeline
    assert timeline.initramfs_seen and timeline.unlocked and timeline.system_up
    assert timeline.initramfs_seen <= timeline.unlocked <= timeline.system_up
    steps = [event.step for event in events]
    for step in (Step.DETECT, Step.VERIFY, Step.PASSPHRASE, Step.SEND, Step.UNLOCKED, Step.BOOT, Step.UP):
        assert step in steps
    assert steps.index(Step.VERIFY) < steps.index(Step.PASSPHRASE) < steps.index(Step.SEND)
    assert any("set up successfully" in message for message in events.messages(Step.SEND))


def test_two_volumes_are_unlocked_one_connection_each(
    lab: LabInfo, lab_control: Lab, rebooted: Callable[[str], None], pool: SshPool, tmp_path: Path
) -> None:
    rebooted("app2")
    before = len(entries_for(lab.received_log, "app2"))
    result = unlock_server(pool, request_for(lab_spec(lab, "app2"), tmp_path, LUKS_PASSPHRASE),
                           UnlockOptions(wait_seconds=30))
    assert result.volumes_unlocked == ("root", "data")
    assert result.attempts == 2
    assert [name for name, _ in result.timeline.volumes] == ["root", "data"]
    assert entries_for(lab.received_log, "app2")[before:] == [LUKS_PASSPHRASE.encode()] * 2
    assert lab_control.phase("app2") == "up"


def test_a_wrong_passphrase_is_tried_once_and_never_again(
    lab: LabInfo, lab_control: Lab, rebooted: Callable[[str], None], pool: SshPool, tmp_path: Path
) -> None:
    rebooted("app1")
    before = len(entries_for(lab.received_log, "app1"))
    events = Events()
    with pytest.raises(WrongPassphrase) as caught:
        unlock_server(pool, request_for(lab_spec(lab, "app1"), tmp_path, "not the passphrase"),
                      UnlockOptions(wait_seconds=30), progress=events)
    assert entries_for(lab.received_log, "app1")[before:] == [b"not the passphrase"]
    assert lab_control.phase("app1") == "locked"
    assert "wrong" in str(caught.value) and "not the passphrase" not in str(caught.value)
    assert caught.value.timeline is not None and caught.value.timeline.initramfs_seen is not None
    assert events[-1].step is Step.FAILED
    assert not any(event.step is Step.RETRY for event in events)


def test_a_rogue_initramfs_key_stops_everything_and_nothing_is_sent(
    make_rogue: PrivateServer, lab: LabInfo, pool: SshPool, tmp_path: Path
) -> None:
    # Something answers on the unlock port with a dropbear banner, but not with the pinned key.
    spec = replace(lab_spec(lab, "app1"), unlock_port=make_rogue.spec.unlock_port)
    asked: list[str | None] = []

    def provider(volume: str | None) -> str:
        asked.append(volume)
        return LUKS_PASSPHRASE

    request = replace(request_for(spec, tmp_path, LUKS_PASSPHRASE), passphrase=provider)
    with pytest.raises(HostKeyMismatch) as caught:
        unlock_server(pool, request, UnlockOptions(wait_seconds=10))
    offered = PublicKey.parse(make_rogue.spec.unlock_host_key or "")
    assert caught.value.fingerprint == offered.fingerprint
    expected = PublicKey.parse(lab.server("app1").unlock_host_key or "")
    assert any(expected.fingerprint in text for text in caught.value.expected_fingerprints)
    assert asked == []  # the passphrase was not even fetched
    assert make_rogue.received() == []  # and the rogue initramfs received nothing


@pytest.fixture
def make_rogue(private_server: MakeServer) -> PrivateServer:
    return private_server("anything")


def test_try_again_later_then_success(
    private_server: MakeServer, private_passphrase: str, pool: SshPool, tmp_path: Path
) -> None:
    server = private_server(private_passphrase, initramfs_delay=1.0)
    events = Events()
    result = unlock_server(pool, request_for(server.spec, tmp_path, private_passphrase),
                           UnlockOptions(wait_seconds=30), progress=events)
    assert result.outcome is Outcome.UNLOCKED
    assert any("Try again later" in message for message in events.messages(Step.RETRY))
    assert result.attempts >= 2
    # The passphrase was consumed exactly once: while the initramfs was not ready, nothing was read.
    assert server.received() == [private_passphrase.encode()]
    assert server.failures() == {"root": 0}


def test_a_connection_lost_mid_unlock_is_retried_cleanly(
    private_server: MakeServer, private_passphrase: str, pool: SshPool, tmp_path: Path
) -> None:
    server = private_server(private_passphrase)
    # The first connection's answers come late; as soon as cryptroot-unlock runs, it is frozen and
    # the connection cut, so the panel sees the connection drop in the middle of the unlock.
    proxy = CuttableProxy(server.dropbear.port, first_delay=0.5).start()
    try:
        cut = freeze_and_cut_first_session(server.state_file, proxy)
        spec = replace(server.spec, unlock_port=proxy.port)
        events = Events()
        result = unlock_server(pool, request_for(spec, tmp_path, private_passphrase),
                               UnlockOptions(wait_seconds=30), progress=events)
    finally:
        proxy.stop()
    assert cut.is_set() and proxy.connections >= 2
    assert any("connection was lost" in message for message in events.messages(Step.RETRY))
    assert result.outcome is Outcome.UNLOCKED and server.phase() == "up"
    # A clean retry: no try was used up, and only the exact passphrase ever arrived.
    assert server.failures() == {"root": 0}
    assert server.received() and set(server.received()) == {private_passphrase.encode()}


@pytest.mark.slow
def test_a_boot_that_takes_ten_seconds_after_the_unlock(
    private_server: MakeServer, private_passphrase: str, pool: SshPool, tmp_path: Path
) -> None:
    server = private_server(private_passphrase, boot_delay=10.0)
    events = Events()
    result = unlock_server(pool, request_for(server.spec, tmp_path, private_passphrase),
                           UnlockOptions(wait_seconds=40), progress=events)
    timeline = result.timeline
    assert result.outcome is Outcome.UNLOCKED
    assert timeline.unlocked is not None and timeline.system_up is not None
    assert (timeline.system_up - timeline.unlocked).total_seconds() >= 10.0
    assert server.received() == [private_passphrase.encode()]  # waiting never re-sent it
    assert events[-1].step is Step.UP


def test_not_up_when_the_wait_runs_out_is_a_timeout(
    private_server: MakeServer, private_passphrase: str, pool: SshPool, tmp_path: Path
) -> None:
    server = private_server(private_passphrase, boot_delay=30.0)
    with pytest.raises(UnlockTimeout) as caught:
        unlock_server(pool, request_for(server.spec, tmp_path, private_passphrase), UnlockOptions(wait_seconds=2))
    assert caught.value.phase == "boot"
    assert caught.value.volumes_unlocked == ("root",)  # as cryptroot-unlock named it
    assert server.received() == [private_passphrase.encode()]


def test_a_server_that_is_already_up_gets_nothing(lab: LabInfo, pool: SshPool, tmp_path: Path) -> None:
    asked: list[str | None] = []

    def provider(volume: str | None) -> str:
        asked.append(volume)
        return LUKS_PASSPHRASE

    request = replace(request_for(lab_spec(lab, "app1"), tmp_path, LUKS_PASSPHRASE), passphrase=provider)
    result = unlock_server(pool, request, UnlockOptions(wait_seconds=10))
    assert result.outcome is Outcome.ALREADY_UP
    assert asked == [] and result.attempts == 0


def test_cancel_stops_the_wait(private_server: MakeServer, pool: SshPool, tmp_path: Path) -> None:
    server = private_server("whatever", initramfs_delay=60.0)
    cancel = CancelToken()

    def progress(event: object) -> None:
        if getattr(event, "step", None) is Step.RETRY:
            cancel.cancel()

    with pytest.raises(Cancelled):
        unlock_server(pool, request_for(server.spec, tmp_path, "whatever"), UnlockOptions(wait_seconds=30),
                      progress=progress, cancel=cancel)
    assert server.received() == []


def test_reboot_and_unlock_in_one_flow(
    lab: LabInfo, lab_control: Lab, rebooted: Callable[[str], None], pool: SshPool, tmp_path: Path
) -> None:
    events = Events()
    result = reboot_and_unlock(pool, request_for(lab_spec(lab, "app1"), tmp_path, LUKS_PASSPHRASE),
                               UnlockOptions(wait_seconds=60), reboot=lambda: rebooted("app1"), progress=events)
    assert result.outcome is Outcome.UNLOCKED
    timeline = result.timeline
    assert timeline.went_down and timeline.initramfs_seen and timeline.unlocked and timeline.system_up
    assert timeline.went_down <= timeline.initramfs_seen <= timeline.unlocked <= timeline.system_up
    steps = [event.step for event in events]
    assert steps.index(Step.REBOOT) < steps.index(Step.DOWN) < steps.index(Step.DETECT) < steps.index(Step.UP)
    assert lab_control.phase("app1") == "up"


def test_many_servers_unlock_in_parallel(
    lab: LabInfo, lab_control: Lab, rebooted: Callable[[str], None], pool: SshPool, tmp_path: Path
) -> None:
    rebooted("app1")
    rebooted("app2")
    seen: dict[str, list[Step]] = {}
    results = unlock_many(pool, [request_for(lab_spec(lab, name), tmp_path, LUKS_PASSPHRASE)
                                 for name in ("app1", "app2")], UnlockOptions(wait_seconds=60),
                          progress=lambda server, event: seen.setdefault(server, []).append(event.step))
    assert {name: getattr(result, "outcome", result) for name, result in results.items()} == {
        "app1": Outcome.UNLOCKED, "app2": Outcome.UNLOCKED}
    assert Step.UP in seen["app1"] and Step.UP in seen["app2"]
    assert lab_control.phase("app1") == lab_control.phase("app2") == "up"


def test_an_unknown_initramfs_key_is_never_trusted_on_first_use(
    lab: LabInfo, rebooted: Callable[[str], None], pool: SshPool, tmp_path: Path
) -> None:
    from services.errors import UnknownHostKey

    rebooted("app1")
    before = len(entries_for(lab.received_log, "app1"))
    spec = replace(lab_spec(lab, "app1"), unlock_host_key=None)
    with pytest.raises(UnknownHostKey):
        unlock_server(pool, request_for(spec, tmp_path, LUKS_PASSPHRASE), UnlockOptions(wait_seconds=10))
    assert len(entries_for(lab.received_log, "app1")) == before
    spec = replace(spec, unlock_host_key=other_key_line())
    with pytest.raises(HostKeyMismatch):
        unlock_server(pool, request_for(spec, tmp_path, LUKS_PASSPHRASE), UnlockOptions(wait_seconds=10))
    assert len(entries_for(lab.received_log, "app1")) == before


def test_volumes_with_different_passphrases_each_get_their_own(
    private_server: MakeServer, private_passphrase: str, pool: SshPool, tmp_path: Path
) -> None:
    from panel.lab.luks import create_volume

    server = private_server(private_passphrase, volumes=("root", "data"))
    data_passphrase = private_passphrase + " for data"
    create_volume(server.state_file.parent / "luks" / "data.img", data_passphrase)  # its own header
    passphrases = {"root": private_passphrase, "data": data_passphrase}
    asked: list[str | None] = []

    def provider(volume: str | None) -> str:
        asked.append(volume)
        return passphrases[str(volume)]

    request = replace(request_for(server.spec, tmp_path, ""), passphrase=provider)
    # Listed in the other order than the initramfs asks: only waiting for its prompt can get this right.
    request = replace(request, spec=replace(server.spec, unlock_volumes=("data", "root")))
    result = unlock_server(pool, request, UnlockOptions(wait_seconds=30, send_before_prompt=False))
    assert result.volumes_unlocked == ("root", "data")
    assert asked == ["root", "data"]
    assert server.received() == [private_passphrase.encode(), data_passphrase.encode()]
    assert server.failures() == {"root": 0, "data": 0}


def test_no_tries_left_stops_without_sending(
    private_server: MakeServer, pool: SshPool, tmp_path: Path
) -> None:
    from services.unlock import TooManyTries

    server = private_server("the real one")
    request = request_for(server.spec, tmp_path, "a wrong one")
    for _ in range(2):
        with pytest.raises(WrongPassphrase):
            unlock_server(pool, request, UnlockOptions(wait_seconds=10))
    with pytest.raises(TooManyTries):  # the third wrong try was the last one the initramfs takes
        unlock_server(pool, request, UnlockOptions(wait_seconds=10))
    with pytest.raises(TooManyTries) as caught:
        unlock_server(pool, request, UnlockOptions(wait_seconds=10))
    assert "maximum number of tries" in str(caught.value)
    assert len(server.received()) == 3  # the fourth run was told at once; its passphrase was never read


def test_an_echoing_far_end_never_puts_the_passphrase_in_a_message(
    lab: LabInfo, lab_client_key: Path, private_passphrase: str, pool: SshPool, tmp_path: Path
) -> None:
    """A misconfigured initramfs whose forced command echoes its input: the panel stops (an answer it
    does not know is not retried) and neither the error nor the progress holds the passphrase."""
    from panel.lab.dropbear import start_dropbear
    from services.unlock import UnlockError

    echo = start_dropbear(tmp_path / "echo", client_key=lab_client_key, forced_command=["cat"], name="echo")
    try:
        spec = replace(lab_spec(lab, "app1"), identity=str(lab_client_key), unlock_port=echo.port,
                       unlock_host_key=echo.host_key_line)
        events = Events()
        with pytest.raises(UnlockError) as caught:
            unlock_server(pool, request_for(spec, tmp_path, private_passphrase), UnlockOptions(wait_seconds=10),
                          progress=events)
    finally:
        echo.stop()
    assert "[passphrase]" in str(caught.value)
    assert private_passphrase not in str(caught.value)
    assert not any(private_passphrase in event.message for event in events)
