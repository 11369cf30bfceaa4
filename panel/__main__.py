"""``python -m panel``: the window; ``python -m panel COMMAND``: the command line."""

from __future__ import annotations

import sys


def main() -> int:
    from panel.cli import main as cli_main

    return cli_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
