"""``python -m panel.lab.standins --dir FOLDER --port-file FILE``: serve the three stand-ins."""

from __future__ import annotations

import argparse
from pathlib import Path

from panel.lab.standins.runner import HOST, PORT_FILE, serve_forever


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m panel.lab.standins", description=__doc__)
    parser.add_argument("--dir", type=Path, required=True, help="the lab folder (for the log and the port file)")
    parser.add_argument("--port-file", type=Path, help=f"where to write the ports (default DIR/{PORT_FILE})")
    parser.add_argument("--host", default=HOST)
    arguments = parser.parse_args(argv)
    arguments.dir.mkdir(parents=True, exist_ok=True)
    serve_forever(arguments.dir, arguments.port_file or arguments.dir / PORT_FILE, arguments.host)


if __name__ == "__main__":
    main()
