"""Codebook health: how evenly each residual level uses its codes on real audio.

A level whose codes go unused wastes bits: with K codes the level costs log2(K) bits a frame (before entropy
coding) but carries at most log2(perplexity). This is what EnCodec's codebook defects (docs/quantization.md)
show up as, and what the evaluation reports for audiocodec's models at their highest bandwidth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class LevelHealth:
    """One level over the evaluated audio: perplexity (2^entropy of its code distribution), that divided by
    the codebook size (1.0: every code equally used), the share of codes used at least once, and how many codes
    were never used (dead on this data)."""

    level: int
    frames: int
    perplexity: float
    perplexity_ratio: float
    used: float
    dead: int


def codebook_health(counts: np.ndarray) -> list[LevelHealth]:
    """Per-level health from code counts `[n_q, bins]`; levels that coded no frame are left out."""
    counts = np.asarray(counts, dtype=np.float64)
    levels = []
    for level, row in enumerate(counts):
        total = row.sum()
        if total <= 0:
            continue
        p = row[row > 0] / total
        perplexity = float(np.exp(-(p * np.log(p)).sum()))
        levels.append(LevelHealth(level, int(total), perplexity, perplexity / row.size,
                                  float((row > 0).mean()), int((row == 0).sum())))
    return levels


def markdown_health(levels: list[LevelHealth], bins: int) -> str:
    lines = [f"| level | frames | perplexity | perplexity / {bins} | codes used | dead codes |",
             "|---|---|---|---|---|---|"]
    for h in levels:
        lines.append(f"| {h.level} | {h.frames} | {h.perplexity:.1f} | {h.perplexity_ratio:.3f} | "
                     f"{100 * h.used:.1f}% | {h.dead} |")
    return "\n".join(lines)
