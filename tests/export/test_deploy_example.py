"""docs/deploy.md's example decodes a .ac file with onnxruntime and numpy, in a process where torch cannot load."""

import re
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
import torch

from audiocodec import compress, decompress
from tiny_models import tiny_codec

pytest.importorskip("onnxruntime")

from audiocodec.export.onnx import export_onnx  # noqa: E402

DOC = Path(__file__).parents[2] / "docs" / "deploy.md"
#: Runs a script with `import torch` failing, as on a machine without PyTorch.
WITHOUT_TORCH = "import runpy, sys; sys.modules['torch'] = None; sys.argv = sys.argv[1:]; " \
                "runpy.run_path(sys.argv[0], run_name='__main__')"


def example() -> str:
    return re.search(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)[1]


def test_example_decodes_as_decompress_does(tmp_path):
    codec = tiny_codec()
    codec.code_frequencies.uniform_(0, 100)  # an entropy-coded payload (uniform tables would code fixed width)
    model = tmp_path / "model"
    codec.save_pretrained(model)
    export_onnx(codec, tmp_path / "onnx")
    t = torch.arange(4000) / codec.sample_rate
    data = compress((0.3 * torch.sin(2 * torch.pi * 440 * t))[None], codec.sample_rate, model=str(model))
    (tmp_path / "in.ac").write_bytes(data)
    (tmp_path / "decode_ac.py").write_text(example())
    done = subprocess.run([sys.executable, "-c", WITHOUT_TORCH, str(tmp_path / "decode_ac.py"), str(tmp_path / "onnx"),
                           str(tmp_path / "in.ac"), str(tmp_path / "out.wav")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with wave.open(str(tmp_path / "out.wav")) as f:
        assert (f.getframerate(), f.getnchannels()) == (codec.sample_rate, 1)
        ours = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2") / 32767
    expected, _ = decompress(data, model=str(model))
    assert ours.shape == (4000,)
    assert np.abs(ours - expected[0].numpy()).max() <= 2 / 32767  # 16-bit rounding


def test_without_torch_the_example_really_has_no_torch(tmp_path):
    script = tmp_path / "probe.py"
    script.write_text("import audiocodec.export.runtime, audiocodec.format.bitstream, audiocodec.format.entropy\n"
                      "import torch\n")
    done = subprocess.run([sys.executable, "-c", WITHOUT_TORCH, str(script)], capture_output=True, text=True)
    assert done.returncode != 0 and "import of torch halted" in done.stderr  # the runner loaded, torch did not
