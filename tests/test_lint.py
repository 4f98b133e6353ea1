"""The tree passes the project's lint configuration (ruff.toml), as CI checks with the rest of the suite."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_check_passes_on_the_whole_tree():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", "."],
                            cwd=ROOT, capture_output=True, text=True)
    assert "No module named ruff" not in result.stderr, "ruff is missing: pip install -e '.[test]'"
    assert result.returncode == 0, result.stdout + result.stderr


def test_setup_reads_the_one_version_string():
    import audiocodec

    setup = (ROOT / "setup.py").read_text(encoding="utf-8")
    assert "version=VERSION" in setup and not re.search(r"version=[\"']\d", setup)  # no second copy
    result = subprocess.run([sys.executable, "setup.py", "--version"], cwd=ROOT, capture_output=True, text=True)
    assert result.stdout.strip().splitlines()[-1] == audiocodec.__version__
