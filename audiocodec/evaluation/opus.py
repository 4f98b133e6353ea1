"""The Opus baseline: a round trip through Xiph's `opusenc` and `opusdec` (Debian's opus-tools).

Settings, and why:
- VBR (`--vbr`, opusenc's default): the mode Opus is tuned for, and like audiocodec's entropy-coded files its
  size follows the content; comparisons are plotted against the bitrate each codec actually achieved, so VBR's
  deviation from the target is shown, not hidden.
- `--padding 0`: opusenc otherwise reserves 512 bytes for future metadata, which is not audio data.
- Complexity, frame size (20 ms) and signal-type detection stay at opusenc's defaults.
- Bitrates outside 6-256 kb/s per channel, the range opusenc documents as meaningful, are not run: below it
  libopus silently codes at its own minimum (asking for 1.5 kb/s gives about 5 kb/s), which would credit Opus
  with a bitrate it did not achieve.
- `opusdec --rate 48000 --float`: Opus's native rate without opusdec's resampler; the caller resamples to the
  reference's rate like any other codec's output.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf
import torch

from . import EvaluationError
from .evaluate import Decoded

KBPS_PER_CHANNEL = (6.0, 256.0)
DECODE_RATE = 48000
TOOLS = ("opusenc", "opusdec")
INSTALL_HINT = "run recipes/install_system_deps.sh (or apt-get install opus-tools)"


def check_tools() -> None:
    """Refuse, before any work is done, to compare with Opus when opus-tools is not installed."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        raise EvaluationError(f"--against opus needs {' and '.join(missing)} (opus-tools): {INSTALL_HINT}")


def ogg_packet_sizes(data: bytes) -> list[int]:
    """Sizes in bytes of the packets in an Ogg stream, in order (page headers and lacing excluded)."""
    sizes, current, position = [], 0, 0
    while position < len(data):
        if data[position : position + 4] != b"OggS" or position + 27 > len(data):
            raise ValueError(f"not an Ogg page at byte {position}")
        lacing = data[position + 27 : position + 27 + data[position + 26]]
        for value in lacing:
            current += value
            if value < 255:  # a lacing value under 255 ends a packet
                sizes.append(current)
                current = 0
        position += 27 + len(lacing) + sum(lacing)
    return sizes


@dataclass
class OpusRunner:
    """Opus through opus-tools, with the settings the module docstring explains."""

    name: str = "opus"

    def settings(self) -> dict:
        version = subprocess.run(["opusenc", "--version"], capture_output=True, text=True).stdout.splitlines()
        return {"encoder": version[0] if version else "opusenc", "mode": "vbr", "padding": 0,
                "kbps_per_channel": list(KBPS_PER_CHANNEL), "decode_rate": DECODE_RATE}

    def unavailable(self, kbps: float, channels: int) -> str | None:
        low, high = (limit * channels for limit in KBPS_PER_CHANNEL)
        if not low <= kbps <= high:
            return f"Opus takes {low:g} to {high:g} kb/s for {channels} channel(s)"
        return None

    def round_trip(self, wav: torch.Tensor, sample_rate: int, kbps: float) -> Decoded:
        with tempfile.TemporaryDirectory(prefix="audiocodec-opus-") as tmp:
            source, encoded, decoded = Path(tmp) / "in.wav", Path(tmp) / "out.opus", Path(tmp) / "out.wav"
            sf.write(source, wav.T.numpy(), sample_rate, subtype="FLOAT")
            _run(["opusenc", "--quiet", "--vbr", "--bitrate", f"{kbps:g}", "--padding", "0", str(source), str(encoded)])
            _run(["opusdec", "--quiet", "--float", "--rate", str(DECODE_RATE), str(encoded), str(decoded)])
            data = encoded.read_bytes()
            audio, rate = sf.read(decoded, dtype="float32", always_2d=True)
        return Decoded(torch.from_numpy(audio.T.copy()), rate, len(data), sum(ogg_packet_sizes(data)[2:]))


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
        raise EvaluationError(f"{command[0]} failed: {detail}")
