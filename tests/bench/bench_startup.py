"""Time from process start to the first painted window: the panel against a bare PySide6 script.

Target (issue "The panel's foundation"): at most 1.5x the bare script, measured in the same run.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import ROOT, result

BARE = r"""
import time
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QMainWindow

class Reporter(QObject):
    def eventFilter(self, watched, event):
        if event.type() == QEvent.Type.Paint:
            print(f"first-paint {time.monotonic():.6f}", flush=True)
            QTimer.singleShot(0, QApplication.quit)
            watched.removeEventFilter(self)
        return False

app = QApplication([])
app.setStyle("Fusion")
window = QMainWindow()
reporter = Reporter()
window.installEventFilter(reporter)
window.resize(1200, 760)
window.show()
app.exec()
"""


def time_to_first_paint(argv: list[str], env: dict[str, str]) -> float:
    started = time.monotonic()
    output = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT, timeout=60, check=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("first-paint "))
    return float(line.split()[1]) - started


def main() -> None:
    runs = int(os.environ.get("BENCH_RUNS", "7"))
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "panel.toml"
        config.write_text('[servers.app1]\nhost = "127.0.0.1"\nport = 1\n')
        env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen"),
               "PANEL_DATA_DIR": str(Path(folder) / "data"), "PANEL_EXIT_AFTER_FIRST_PAINT": "1",
               "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
        panel_argv = [sys.executable, "-m", "panel", "--config", str(config)]
        bare_argv = [sys.executable, "-c", BARE]
        time_to_first_paint(bare_argv, env)  # warm the disk cache for both
        time_to_first_paint(panel_argv, env)
        bare, panel = [], []
        for _ in range(runs):  # interleaved, so both see the same machine load
            bare.append(time_to_first_paint(bare_argv, env))
            panel.append(time_to_first_paint(panel_argv, env))
    measured, baseline = statistics.median(panel), statistics.median(bare)
    result("startup_first_paint", measured, baseline, "<=1.5x", ok=measured <= 1.5 * baseline)


if __name__ == "__main__":
    main()
