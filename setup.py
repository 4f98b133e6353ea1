import re
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent
# One version string: audiocodec.__version__, read here without importing the package.
VERSION = re.search(r'^__version__ = "([^"]+)"$', (ROOT / "audiocodec" / "__init__.py").read_text(encoding="utf-8"),
                    re.MULTILINE).group(1)
# `audiocodec eval`: PESQ-wb, STOI and the figures; ViSQOL (its port ships the SVR and lattice model files; numba
# makes it about five times faster, ai-edge-litert runs the lattice mapper C++ ViSQOL uses by default in speech mode);
# DNSMOS P.835 (speechmos ships the ONNX model, onnxruntime runs it). The tests need them too.
EVAL_EXTRAS = ["pesq>=0.0.4", "pystoi>=0.3", "matplotlib>=3.6", "visqol-python[accel,lattice]>=3.8",
               "speechmos>=0.0.1.1", "onnxruntime>=1.16"]
# `audiocodec export --onnx` and running its graphs (audiocodec.export; docs/deploy.md).
ONNX_EXTRAS = ["onnx>=1.14", "onnxruntime>=1.16"]

setup(
    name="audiocodec",
    version=VERSION,
    description="EnCodec-style neural audio codec with correct EMA codebook learning",
    long_description=(ROOT / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["audiocodec", "audiocodec.*"]),
    package_data={"audiocodec": ["assets/*", "pretrained/*/*"]},
    install_requires=[
        # torchaudio's newest release (2.11) refuses a torch built for another CUDA version: torch 2.15 is built
        # for CUDA 13.2, 2.11-2.14 for 13.0 as torchaudio 2.11 is.
        "torch>=2.1,<2.15",
        "torchaudio>=2.1",
        "numpy>=1.24",
        "soundfile>=0.12",
        "safetensors>=0.4",
        # Range coder for the compressed format: a maintained Rust implementation beats a hand-written one.
        "constriction>=0.3",
        # Progress bars for long files and training.
        "tqdm>=4.60",
        # Recipes and training configs are YAML.
        "pyyaml>=6.0",
    ],
    extras_require={
        "train": ["tensorboard>=2.10"],
        "eval": EVAL_EXTRAS,
        "onnx": ONNX_EXTRAS,
        # recipes/data/build_corpus.py: the scores it renders come from music21's corpus.
        "data": ["music21>=9"],
        "test": [
            "pytest>=7",
            # `ruff check .` passes on the whole tree (ruff.toml); tests/test_lint.py runs it.
            "ruff>=0.5",
            "hypothesis>=6.80",
            # The oracle for EnCodec compatibility tests and the codebook benchmark's baseline.
            "encodec==0.1.1",
            "tensorboard>=2.10",
            *EVAL_EXTRAS,
            *ONNX_EXTRAS,
            # The oracle for reading transformers' EnCodec folders (random weights; nothing is downloaded).
            "transformers>=4.31",
        ],
    },
    entry_points={"console_scripts": ["audiocodec=audiocodec.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "License :: OSI Approved :: MIT License",
        "Topic :: Multimedia :: Sound/Audio",
    ],
)
