#!/usr/bin/env bash
# System packages that pip cannot install: Debian's opus-tools (opusenc, opusdec), which `audiocodec eval
# --against opus` and its tests use, and chromium, in which tests/evaluation/test_html.py opens the HTML report. Quiet and does nothing when they are already installed; installs them
# non-interactively as root or through password-less sudo; otherwise says what to install and exits 1.
set -euo pipefail

packages=()
command -v opusenc >/dev/null 2>&1 && command -v opusdec >/dev/null 2>&1 || packages+=(opus-tools)
command -v chromium >/dev/null 2>&1 || packages+=(chromium)
[ ${#packages[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "install_system_deps: please install ${packages[*]} (e.g. sudo apt-get install ${packages[*]})" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_system_deps: no apt-get here; install ${packages[*]} with your system's package manager" >&2
    exit 1
fi
echo "install_system_deps: installing ${packages[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
