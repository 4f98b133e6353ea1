#!/usr/bin/env bash
# Debian packages the offline corpus is built from (see docs/data.md for what each one contributes and its licence).
# Idempotent: installs only what is missing; needs root (or sudo) the first time.
set -euo pipefail
packages=(
    asterisk-core-sounds-en-g722   # recorded speech: the Asterisk prompts (Allison Smith), 16 kHz G.722
    ktuberling-data                # recorded speech: words spoken by different people in ~27 languages
    wesnoth-1.16-music             # recorded music: the Battle for Wesnoth soundtrack (orchestral)
    alsa-utils                     # recorded speech: the seven speaker-test clips
    sound-theme-freedesktop        # sounds: desktop event sounds
    espeak-ng flite festival festvox-us-slt-hts festvox-kallpc16k   # text-to-speech voices
    fluidsynth fluid-soundfont-gm  # MIDI rendering with a real-instrument SoundFont
    ffmpeg                         # decodes the G.722 prompts
)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install as root: apt-get install ${missing[*]}" >&2; exit 1; }
    sudo=sudo
fi
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
