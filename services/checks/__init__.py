"""Host checks, intrusion signals and outside-service checks, written once for the window and the CLI.

>>> request = SweepRequest(inventory, tuple(ServerTarget(spec, runner) for spec, runner in ...))
>>> result = run_sweep(request)
>>> [r for r in result.results if r.is_alert]

Each :class:`CheckResult` has a check id (:mod:`services.checks.ids`), a :class:`Severity`, a stable
subject, the evidence it saw and a suggested :class:`Action`. A check that cannot run is UNKNOWN
with the reason, never an exception.
"""

from services.checks import ids
from services.checks.files import Baseline, FileChange, WatchPlan, WatchScan, accepted, merge_scan, plan_for
from services.checks.host import AuditNote, BootRecord, HostInputs, HostReport, evaluate_host, gather_host
from services.checks.model import Action, CheckResult, Severity, exit_code, worst
from services.checks.sweep import ServerOutcome, ServerTarget, SweepRequest, SweepResult, check_server, run_sweep
from services.checks.tls import CertificateInfo, check_tls, fetch_certificate
from services.checks.vendors import VendorKeys, cloudflare_checks, mailgun_checks, stripe_checks

__all__ = [
    "Action",
    "AuditNote",
    "Baseline",
    "BootRecord",
    "CertificateInfo",
    "CheckResult",
    "FileChange",
    "HostInputs",
    "HostReport",
    "ServerOutcome",
    "ServerTarget",
    "Severity",
    "SweepRequest",
    "SweepResult",
    "VendorKeys",
    "WatchPlan",
    "WatchScan",
    "accepted",
    "check_server",
    "check_tls",
    "cloudflare_checks",
    "evaluate_host",
    "exit_code",
    "fetch_certificate",
    "gather_host",
    "ids",
    "mailgun_checks",
    "merge_scan",
    "plan_for",
    "run_sweep",
    "stripe_checks",
    "worst",
]
