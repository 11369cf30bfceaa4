"""Remote disk unlock after a reboot: the procedure, its dataclasses and errors, and its setup.

>>> request = UnlockRequest(spec, system_endpoint, initramfs_endpoint, passphrase=lambda volume: ...)
>>> result = unlock_server(pool, request, UnlockOptions(wait_seconds=120), progress=print)
>>> result.timeline.lines()
"""

from services.unlock.errors import TooManyTries, UnlockError, UnlockTimeout, WrongPassphrase
from services.unlock.model import (
    STEP_ORDER,
    Outcome,
    PassphraseProvider,
    ProgressCallback,
    Step,
    UnlockOptions,
    UnlockProgress,
    UnlockRequest,
    UnlockResult,
    UnlockTimeline,
)
from services.unlock.output import Verdict, read_output
from services.unlock.procedure import reboot_and_unlock, unlock_many, unlock_server
from services.unlock.setup import (
    DEFAULT_INSTALL_COMMAND,
    DEFAULT_UPDATE_COMMAND,
    RECOMMENDED_OPTIONS,
    InitramfsKey,
    InitramfsPaths,
    SetupFix,
    SetupItem,
    SetupReport,
    apply_setup_fix,
    check_setup,
    panel_public_key,
    plan_setup_fix,
    preferred_key,
    read_initramfs_host_keys,
)

__all__ = [
    "DEFAULT_INSTALL_COMMAND",
    "DEFAULT_UPDATE_COMMAND",
    "RECOMMENDED_OPTIONS",
    "STEP_ORDER",
    "InitramfsKey",
    "InitramfsPaths",
    "Outcome",
    "PassphraseProvider",
    "ProgressCallback",
    "SetupFix",
    "SetupItem",
    "SetupReport",
    "Step",
    "TooManyTries",
    "UnlockError",
    "UnlockOptions",
    "UnlockProgress",
    "UnlockRequest",
    "UnlockResult",
    "UnlockTimeline",
    "UnlockTimeout",
    "Verdict",
    "WrongPassphrase",
    "apply_setup_fix",
    "check_setup",
    "panel_public_key",
    "plan_setup_fix",
    "preferred_key",
    "read_initramfs_host_keys",
    "read_output",
    "reboot_and_unlock",
    "unlock_many",
    "unlock_server",
]
