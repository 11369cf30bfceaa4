"""Loading 10,000+ Stripe customers into the Billing page: few requests, and a window that never stalls.

Targets (issue "Cloudflare, Stripe and Mailgun pages"):
- the customers take no more requests than ceil(customers / 100) plus a few (Stripe's page size);
- while the page loads (customers page by page, and the subscriptions, failed invoices and payments
  beside them) the event loop never stalls for more than 50 ms. A QTimer probe ticking every 5 ms
  records the longest gap; the same probe on the idle window, in the same run, is the baseline.

The Stripe stand-in runs in its own process (as Stripe is on another machine), holding 10,500
customers; with fewer, the bench says so and uses an in-process stand-in seeded to 10,000.
The page is set up as the window sets up its pages: the application from ``make_application`` and
the startup objects frozen out of the garbage collector's sight once the page is built.
Run: ``python tests/bench/bench_billing.py`` (BENCH_RUNS=3 by default).
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import result

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

MIN_CUSTOMERS = 10_000
STALL_LIMIT_MS = 50.0
EXTRA_REQUESTS = 3
PROBE_MS = 5


class Probe:
    """Ticks every 5 ms on the GUI thread and keeps the longest gap between two ticks, and the most
    CPU the GUI thread itself used within one gap (the page's own work: a long gap with little CPU
    is the thread waiting, for the GIL or for a core of a busy machine)."""

    def __init__(self) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(PROBE_MS)
        self.timer.timeout.connect(self._tick)
        self.last = 0.0
        self.last_cpu = 0.0
        self.max_gap = 0.0
        self.max_busy = 0.0
        self.ticks = 0

    def start(self) -> None:
        self.last = time.perf_counter()
        self.last_cpu = time.thread_time()
        self.max_gap = 0.0
        self.max_busy = 0.0
        self.ticks = 0
        self.timer.start()

    def stop(self) -> float:
        self.timer.stop()
        return self.max_gap * 1000

    def _tick(self) -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        self.max_gap = max(self.max_gap, now - self.last)
        self.max_busy = max(self.max_busy, cpu - self.last_cpu)
        self.last, self.last_cpu = now, cpu
        self.ticks += 1


def run_loop(seconds: float, until: Any = None) -> bool:
    """Run the event loop for ``seconds`` or until ``until()``; True when ``until`` came true."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    deadline = QTimer()
    deadline.setSingleShot(True)
    deadline.timeout.connect(loop.quit)
    check = QTimer()
    check.setInterval(10)
    check.timeout.connect(lambda: loop.quit() if until is not None and until() else None)
    deadline.start(int(seconds * 1000))
    check.start()
    loop.exec()
    check.stop()
    deadline.stop()
    return bool(until is not None and until())


def stripe_requests_seen(stripe_url: str) -> int:
    from panel.lab.standins import post_faults

    return int(post_faults(stripe_url)["requests_seen"])


def main() -> None:
    import keyring
    from PySide6.QtWidgets import QApplication

    from panel.config import load_config
    from panel.context import PanelContext
    from panel.lab import secrets
    from panel.lab.secrets import DemoKeyring
    from panel.lab.standins import StandinServers, start_standins
    from panel.secrets import SecretStore
    from panel.store import Store
    from services.inventory import StripeSpec
    from services.stripe import StripeClient
    from views.app import make_application
    from views.garbage import freeze_startup_objects
    from views.pages.billing import BillingPage
    from views.state import PanelState
    from views.workers import JobRunner

    runs = int(os.environ.get("BENCH_RUNS", "3"))
    make_application()
    keyring.set_keyring(DemoKeyring())
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        handle = start_standins(base / "standins")
        # Stripe runs on someone else's machine: its stand-in should not compete with the window for
        # this one's CPU more than it must.
        try:
            os.setpriority(os.PRIO_PROCESS, handle.pid, 10)
        except OSError:
            pass
        in_process: StandinServers | None = None
        try:
            stripe_url = handle.stripe_url
            with StripeClient(StripeSpec(stripe_url), secrets.STRIPE_KEY) as probe_client:
                started = time.perf_counter()
                total = sum(1 for _ in probe_client.iter_customers())
                bare_seconds = time.perf_counter() - started
            if total < MIN_CUSTOMERS:
                print(f"# the Stripe stand-in holds only {total} customers; seeding an in-process one with "
                      f"{MIN_CUSTOMERS}", flush=True)
                in_process = StandinServers().start()
                in_process.stripe.customer_count = MIN_CUSTOMERS
                with in_process.stripe.lock:
                    in_process.stripe.reset_state()
                stripe_url = in_process.stripe_url
                total = MIN_CUSTOMERS
            print(f"# {total:,} Stripe customers in the stand-in; bare client lists them in {bare_seconds:.2f} s",
                  flush=True)

            config = base / "panel.toml"
            config.write_text(f'[servers.app1]\nhost = "127.0.0.1"\nport = 1\n\n[stripe]\nbase_url = "{stripe_url}"\n')
            os.environ["PANEL_DATA_DIR"] = str(base / "data")
            context = PanelContext(config, load_config(config), Store(base / "store.sqlite"),
                                   SecretStore(DemoKeyring()))
            runner = JobRunner()
            state = PanelState(context, runner)
            state.poll_timer.stop()
            page = BillingPage(state)
            page.resize(1280, 800)
            page.show()
            probe = Probe()
            run_loop(1.0)  # first paint, fonts, styles
            freeze_startup_objects()  # as the window does once its pages are built

            idle, loading, busy, idle_busy, requests, all_requests, seconds = [], [], [], [], [], [], []
            loads = []
            loaded = [False]
            page.loaded.connect(lambda: loaded.__setitem__(0, True))

            def done() -> bool:
                return loaded[0] and page.customers_done and not page.busy("overview")

            for _ in range(runs):
                probe.start()
                run_loop(3.0)
                idle.append(probe.stop())
                idle_busy.append(probe.max_busy * 1000)

                seen_before = stripe_requests_seen(stripe_url) if in_process is None else 0
                loaded[0] = False
                started = time.perf_counter()
                probe.start()
                page.reload()
                finished = run_loop(300, done)
                loading.append(probe.stop())
                busy.append(probe.max_busy * 1000)
                loads.append(os.getloadavg()[0])
                seconds.append(time.perf_counter() - started)
                if not finished:
                    print("# the page did not finish loading within 300 s", file=sys.stderr)
                    break
                if page.customers_model.total != total:
                    print(f"# the page shows {page.customers_model.total} customers, not {total}", file=sys.stderr)
                requests.append(page.customer_requests)
                if in_process is None:
                    all_requests.append(stripe_requests_seen(stripe_url) - seen_before - 1)  # minus our own look
                run_loop(0.5)

            runner.shutdown()
            run_loop(0.5, lambda: not runner.active_jobs)
            page.close()
            context.store.close()
        finally:
            handle.stop()
            if in_process is not None:
                in_process.stop()

    if not loading:
        result("billing_10k_max_stall", float("inf"), 1.0, f"<{STALL_LIMIT_MS:.0f}ms", unit="ms", ok=False)
        return
    budget = math.ceil(total / 100)
    measured_requests = max(requests)
    result("billing_10k_customer_requests", measured_requests, budget, f"<=ceil(n/100)+{EXTRA_REQUESTS}", unit="",
           ok=measured_requests <= budget + EXTRA_REQUESTS)
    if all_requests:
        print(f"# the whole page (customers, subscriptions, open invoices, failed payments, account) took "
              f"{max(all_requests)} requests to Stripe", flush=True)
    stall, idle_gap = max(loading), statistics.median(idle)
    print(f"# longest event-loop gap while loading, per run: {', '.join(f'{g:.1f}' for g in loading)} ms; on the "
          f"idle window: {', '.join(f'{g:.1f}' for g in idle)} ms; load average {', '.join(f'{x:.1f}' for x in loads)} "
          f"on {os.cpu_count()} CPUs", flush=True)
    print(f"# most GUI-thread CPU within one gap while loading: {', '.join(f'{g:.1f}' for g in busy)} ms; idle: "
          f"{', '.join(f'{g:.1f}' for g in idle_busy)} ms", flush=True)
    result("billing_10k_max_stall", stall, idle_gap, f"<{STALL_LIMIT_MS:.0f}ms", unit="ms", ok=stall < STALL_LIMIT_MS)
    gui_busy = max(busy)
    result("billing_10k_gui_work_per_gap", gui_busy, statistics.median(idle_busy), f"<{STALL_LIMIT_MS:.0f}ms",
           unit="ms", ok=gui_busy < STALL_LIMIT_MS)
    load = statistics.median(seconds)
    result("billing_10k_load_time", load, bare_seconds, "info: page load vs the bare client listing the customers",
           unit="s")
    QApplication.processEvents()


if __name__ == "__main__":
    main()
