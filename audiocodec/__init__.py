"""audiocodec: an EnCodec-style neural audio codec whose codebooks learn correctly.

The public API is imported lazily so that `import audiocodec` (and the CLI's `--help`) do not pay for
importing torch until a model is used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Codec": "audiocodec.model",
    "CodecConfig": "audiocodec.model",
    "EncodedAudio": "audiocodec.model",
    "compress": "audiocodec.api",
    "decompress": "audiocodec.api",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'audiocodec' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
