import numpy as np
import pytest

from audiocodec.evaluation.health import codebook_health, markdown_health


def test_health_of_even_skewed_and_collapsed_levels():
    counts = np.array([
        [5, 5, 5, 5],  # every code, evenly
        [6, 2, 0, 0],  # half the codes, skewed
        [9, 0, 0, 0],  # collapsed onto one code
        [0, 0, 0, 0],  # not used at this bandwidth: left out
    ])
    even, skewed, collapsed = codebook_health(counts)
    assert (even.perplexity, even.perplexity_ratio, even.used, even.dead, even.frames) == (
        pytest.approx(4.0), pytest.approx(1.0), 1.0, 0, 20)
    entropy = -(0.75 * np.log(0.75) + 0.25 * np.log(0.25))
    assert skewed.perplexity == pytest.approx(np.exp(entropy)) and (skewed.used, skewed.dead) == (0.5, 2)
    assert (collapsed.perplexity, collapsed.used, collapsed.dead) == (pytest.approx(1.0), 0.25, 3)
    table = markdown_health([even, skewed, collapsed], 4)
    assert "| 1 | 8 | 1.8 | 0.439 | 50.0% | 2 |" in table
