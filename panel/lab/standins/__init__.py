"""Local stand-ins for Cloudflare, Stripe and Mailgun, following each vendor's documented contract
closely enough that the real clients in ``services`` run against them unchanged.

- :class:`StandinServers`: all three in this process (tests): ``with StandinServers() as lab``.
- :func:`start_standins`: all three in one detached child process (the demo); returns a
  :class:`StandinsHandle` with the base URLs, the pid and ``stop()``.
- Faults: ``lab.stripe.faults.fail_next(2)`` in process, or ``POST /__lab__/faults`` on any
  stand-in (``handle.faults("stripe", fail_next=2)``).
"""

from panel.lab.standins.faults import Faults
from panel.lab.standins.runner import StandinServers, StandinsHandle, post_faults, start_standins

__all__ = ["Faults", "StandinServers", "StandinsHandle", "post_faults", "start_standins"]
