"""The sidebar's pages, in order. A page whose module is not there yet does not appear."""

from __future__ import annotations

import importlib

PAGES: list[tuple[str, str]] = [
    ("views.pages.fleet", "FleetPage"),
    ("views.pages.unlock", "UnlockPage"),
    ("views.pages.alerts", "AlertsPage"),
    ("views.pages.backups", "BackupsPage"),
    ("views.pages.groups", "GroupsPage"),
    ("views.pages.logs", "LogsPage"),
    ("views.pages.services_page", "ServicesPage"),
    ("views.pages.processes", "ProcessesPage"),
    ("views.pages.timeline", "TimelinePage"),
    ("views.pages.cloudflare", "CloudflarePage"),
    ("views.pages.billing", "BillingPage"),
    ("views.pages.mail", "MailPage"),
    ("views.pages.audit", "AuditPage"),
    ("views.pages.settings", "SettingsPage"),
]


def available_pages() -> list[type]:
    """Import every page module that exists (call this off the GUI thread: imports read the disk)."""
    classes = []
    for module_name, class_name in PAGES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name == module_name:
                continue
            raise
        classes.append(getattr(module, class_name))
    return classes
