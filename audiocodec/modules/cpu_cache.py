"""The CPU in front of us: its model name and cache sizes, which size the time tiles of `conv` and the pieces of
`activations.ELU`.

A tile is fastest when the data one step of it touches stays in a core's L2 cache. The sizes were first fixed
for a Xeon with 2 MiB of L2 a core; on an AMD EPYC with 512 KiB the same tiles spilled, and the prepared model's
lead over EnCodec's own code fell from 1.5x to 1.35-1.41x. Linux reports the caches in sysfs
(`/sys/devices/system/cpu/cpu0/cache/index*/`: level, type, size); elsewhere, or when they cannot be read,
`FALLBACK_L2_BYTES` keeps the sizes measured first. `describe` is what `benchmarks/speed.py` prints.
"""

from __future__ import annotations

import functools
import platform
import re
from pathlib import Path

CACHE_DIR = Path("/sys/devices/system/cpu/cpu0/cache")
#: A core's L2 where the machine does not say: 2 MiB, the Xeon the tiles were first measured on.
FALLBACK_L2_BYTES = 2 << 20
_SIZE = re.compile(r"(\d+)\s*([KMG]?)B?", re.IGNORECASE)


def cache_sizes() -> dict[str, int]:
    """Bytes of each data or unified cache of CPU 0, by name ("L1d", "L2", "L3"); empty when sysfs has none."""
    return {name: size for name, (size, _) in _caches().items()}


@functools.cache
def _caches() -> dict[str, tuple[int, int]]:
    """(bytes, CPUs sharing it) of each data or unified cache of CPU 0, by name."""
    caches = {}
    for index in sorted(CACHE_DIR.glob("index*")):
        try:
            level = int((index / "level").read_text())
            kind = (index / "type").read_text().strip()
            match = _SIZE.fullmatch((index / "size").read_text().strip())
        except (OSError, ValueError):
            continue
        if kind == "Instruction" or match is None:
            continue
        size = int(match.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[match.group(2).upper()]
        caches[f"L{level}{'d' if kind == 'Data' else ''}"] = (size, _count_cpus(index / "shared_cpu_list"))
    return caches


def _count_cpus(path: Path) -> int:
    """CPUs in a sysfs list such as `0-1,8-9`; 1 when it cannot be read."""
    try:
        count = 0
        for part in path.read_text().strip().split(","):
            first, _, last = part.partition("-")
            count += int(last or first) - int(first) + 1
        return max(1, count)
    except (OSError, ValueError):
        return 1


def l2_bytes() -> int:
    """A core's L2 cache in bytes, or `FALLBACK_L2_BYTES` where the machine does not report one."""
    size = cache_sizes().get("L2", 0)
    return size if 64 << 10 <= size <= 64 << 20 else FALLBACK_L2_BYTES


def tile_bytes() -> int:
    """Bytes of the largest tensor a convolution's tile handles: a core's L2 plus its share of L3, at most 32 MiB.
    That gives 2 MiB on a Xeon with 2 MiB of L2 and about 1.9 MiB of L3 a core (the best of 2**17 to 2**21 values
    there), and 16 MiB on an AMD EPYC with 512 KiB of L2 and 16 MiB of L3 a core, where tiles sized to its L2 alone
    were 7% slower and these 5% faster than 2 MiB ones (docs/notes/2026-12-07-ux-first-contact.md)."""
    size, sharing = _caches().get("L3", (0, 1))
    return min(l2_bytes() + size // sharing, 32 << 20)


def elements_in(size: int) -> int:
    """float32 values in `size` bytes, rounded down to a power of two (at least 1024)."""
    values = max(1024, size // 4)
    return 1 << (values.bit_length() - 1)


@functools.cache
def cpu_model() -> str:
    """The CPU's model name (`/proc/cpuinfo`), or what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def describe() -> str:
    """`AMD EPYC, caches L1d 32 KiB, L2 512 KiB, L3 32 MiB` (per core for L1 and L2, shared for L3)."""
    sizes = cache_sizes()
    caches = ", ".join(f"{name} {_size(size)}" for name, size in sizes.items()) or (
        f"not reported (tiles sized for an L2 of {_size(FALLBACK_L2_BYTES)})")
    return f"{cpu_model()}, caches {caches}"


def _size(size: int) -> str:
    return f"{size >> 20} MiB" if size >= 1 << 20 and not size % (1 << 20) else f"{size >> 10} KiB"
