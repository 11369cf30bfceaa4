#!/usr/bin/env bash
# One entry point for a fresh Debian machine:
#   ./setup.sh          set everything up and open the panel on the local demo fleet
#   ./setup.sh test     set everything up and run the tests (what CI runs)
#   ./setup.sh bench    set everything up and run the benchmarks
#   ./setup.sh install  only set up (Debian packages, virtualenv, the package)
set -euo pipefail
cd "$(dirname "$0")"

DEBIAN_PACKAGES=(
  # the real servers of the demo fleet and the tests
  openssh-server openssh-client dropbear-bin cryptsetup-bin mariadb-server mariadb-client rdiff-backup
  # tools the checks and the lab use on the servers
  iproute2 procps util-linux
  # Python, and the libraries Qt needs to draw (also offscreen and under Xvfb)
  python3 python3-venv python3-pip
  libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1
  libxcb-shape0 libxcb-xinerama0 libxcb-randr0 libxcb-render-util0 libxcb-image0 libdbus-1-3
  libfontconfig1 fonts-dejavu-core xvfb
)

missing_packages() {
  local missing=()
  for package in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  echo "${missing[@]:-}"
}

install_debian_packages() {
  local missing
  missing=$(missing_packages)
  [ -z "$missing" ] && return 0
  local apt=(apt-get install -y --no-install-recommends $missing)
  if [ "$(id -u)" -eq 0 ]; then
    echo "Installing Debian packages: $missing"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" -qq
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    echo "Installing Debian packages with sudo: $missing"
    sudo DEBIAN_FRONTEND=noninteractive apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive "${apt[@]}" -qq
  else
    echo "These Debian packages are missing. Install them, then run this again:" >&2
    echo "  sudo apt-get update && sudo ${apt[*]}" >&2
    exit 1
  fi
}

setup_virtualenv() {
  local stamp=.venv/.installed-from
  local wanted
  wanted=$(sha256sum pyproject.toml | cut -d' ' -f1)
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
  fi
  if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".[test]"
    echo "$wanted" > "$stamp"
  fi
}

run_tests() {
  export QT_QPA_PLATFORM=offscreen
  .venv/bin/python -m ruff check services panel views tests
  .venv/bin/python -m mypy
  .venv/bin/python -m pytest "$@"
}

run_benchmarks() {
  export QT_QPA_PLATFORM=offscreen
  .venv/bin/python tests/bench/run.py "$@"
}

open_demo() {
  if [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && [ -z "${QT_QPA_PLATFORM:-}" ]; then
    echo "No display found: opening the panel under Xvfb (set DISPLAY to use your own screen)." >&2
    exec xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python -m panel demo "$@"
  fi
  exec .venv/bin/python -m panel demo "$@"
}

command=${1:-demo}
[ $# -gt 0 ] && shift
install_debian_packages
setup_virtualenv
case "$command" in
  demo) open_demo "$@" ;;
  test) run_tests "$@" ;;
  bench) run_benchmarks "$@" ;;
  install) echo "Set up. Open the panel with: .venv/bin/python -m panel demo" ;;
  *) echo "usage: $0 [demo|test|bench|install]" >&2; exit 2 ;;
esac
