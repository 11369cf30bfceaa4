"""Screenshots of the real window, for the README and for looking at what we build.

    xvfb-run -a -s "-screen 0 1400x900x24" python tests/screenshots.py --config DIR/panel.toml \\
        --out docs/screenshots Fleet Alerts ...

Opens the window on the config (with the demo keyring), waits for every server's first probe,
then shows each named page and saves ``<page>.png``; ``Page:item`` focuses the page on an item
(``Groups:acme``) and saves ``<page>-<item>.png``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    parser.add_argument("--settle", type=float, default=3.0, help="seconds to let a page load its data")
    parser.add_argument("--size", default="1280x800")
    parser.add_argument("--read-write", action="store_true", help="turn read-only mode off first")
    parser.add_argument("pages", nargs="*", default=["Fleet"])
    args = parser.parse_args()

    import keyring

    from panel.lab.secrets import DemoKeyring

    keyring.set_keyring(DemoKeyring())
    os.environ.setdefault("PANEL_DATA_DIR", str(args.config.parent / "panel-data"))
    from PySide6.QtCore import QEventLoop, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from views.app import make_application
    from views.main_window import MainWindow

    _app = make_application()  # kept alive for the whole run
    settings = QSettings(str(args.out / ".screenshot-settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(args.config.resolve(), settings=settings)
    width, height = (int(x) for x in args.size.split("x"))
    window.resize(width, height)
    window.show()
    window.load()

    def pump(seconds: float, until: object = None) -> None:
        """Run the event loop for ``seconds``, or until ``until()`` holds (checked every 20 ms)."""
        loop = QEventLoop()
        check = QTimer()
        check.timeout.connect(lambda: loop.quit() if callable(until) and until() else None)
        check.start(20)
        QTimer.singleShot(int(seconds * 1000), loop.quit)
        loop.exec()
        check.stop()

    pump(30, lambda: window.state is not None and len(window.state.statuses) == len(
        window.state.context.inventory.servers))
    if window.state is None:
        print("the window did not load", file=sys.stderr)
        return 1
    if args.read_write:
        window.read_only_box.setChecked(False)
    args.out.mkdir(parents=True, exist_ok=True)
    for wanted in args.pages:
        title, _, item = wanted.partition(":")  # "Groups:acme": the page, focused on an item
        if window.show_page(title) is None:
            print(f"no page {title!r}", file=sys.stderr)
            continue
        if item:
            window.navigate(title, item)
        pump(args.settle)
        path = args.out / f"{title.lower()}{'-' + item if item else ''}.png"
        window.grab().save(str(path))
        print(path)
    window.close()
    QApplication.processEvents()
    return 0


if __name__ == "__main__":
    sys.exit(main())
