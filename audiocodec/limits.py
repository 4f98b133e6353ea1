"""Bounds that the file format, audio reading and model configs share.

A `.ac` file's header is checked against them before anything is allocated (`format.bitstream`); audio that
could not be written into a file is refused when it is read (`io.audio`), and a model config that could not
either when it is loaded (`model.codec`). They live here, imported by all three, so that the model does not
depend on the file format.
"""

from __future__ import annotations

MAX_SECONDS = 24 * 3600  # longest audio a file may claim: bounds every allocation made while decoding
MAX_SAMPLE_RATE = 384_000
MAX_CHANNELS = 64
MAX_CODEBOOKS = 256
MAX_BINS = 1 << 16
#: Bounds of a file's level gain (`Header.gain`, `io.loudness.level_gain`): +-60 dB.
MIN_GAIN, MAX_GAIN = 1e-3, 1e3
