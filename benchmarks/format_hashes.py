"""SHA-256 of the `.ac` bytes the bundled sample compresses to, at every bandwidth, for three models.

    python benchmarks/format_hashes.py [--out FILE]

The models: the embedded default, and EnCodec's 24 kHz and 48 kHz layouts with seeded random weights (the
`encodec` package builds them, `Codec.from_encodec` loads them, as tests/test_encodec_compat.py does). Each model
codes the sample through the library (`audiocodec.compress`) and through the command line (`audiocodec compress`,
called in-process). A change that must not alter the format (a refactoring) leaves every line identical: run it
before and after and compare the two outputs with `diff`.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import sys
import tempfile
import warnings
from pathlib import Path

import soundfile as sf
import torch
from encodec_reference import random_encodec

SAMPLE = Path(__file__).resolve().parent.parent / "audiocodec" / "assets" / "sample.flac"


def encodec_weights(variant: str, folder: Path) -> Path:
    """A state-dict file of EnCodec's `variant` ("24khz" or "48khz") with seeded random weights and codebooks."""
    warnings.filterwarnings("ignore", category=FutureWarning)
    path = folder / f"encodec_{variant}.th"
    torch.save(random_encodec(variant, seed=1).state_dict(), path)
    return path


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="also write the lines to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    import audiocodec
    from audiocodec import Codec
    from audiocodec.cli import main as cli_main

    wav, rate = sf.read(SAMPLE, dtype="float32", always_2d=True)
    wav = torch.from_numpy(wav.T.copy())
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        models = {"default": ("default", Codec.from_pretrained("default").prepare_for_inference())}
        for variant in ("24khz", "48khz"):
            codec = Codec.from_encodec(encodec_weights(variant, tmp), variant)
            folder = codec.save_pretrained(tmp / f"model_{variant}")
            models[f"encodec_{variant}"] = (str(folder), codec.prepare_for_inference())
        # The exports: their files and the ids they record must not change either.
        codec = Codec.from_encodec(tmp / "encodec_24khz.th", "24khz")
        for label, options in (("full", {}), ("compact", {"compact": True}),
                               ("int8", {"compact": True, "int8": True})):
            folder = codec.save_pretrained(tmp / f"export_{label}", **options)
            for file in ("config.json", "model.safetensors"):
                lines.append(f"export 24khz {label:7s} {file:17s} {digest((folder / file).read_bytes())}")
            lines.append(f"export 24khz {label:7s} model id          {Codec.from_pretrained(folder).model_id()}")
        folder = tmp / "export_int8"
        models["encodec_24khz_int8"] = (str(folder), Codec.from_pretrained(folder).prepare_for_inference())
        for name, (location, codec) in models.items():
            for bandwidth in codec.bandwidths:
                data = audiocodec.compress(wav, rate, model=codec, bandwidth=bandwidth)
                lines.append(f"{name:18s} {bandwidth:5.1f} kb/s  api {len(data):7d} B  {digest(data)}")
                out = tmp / f"{name}_{bandwidth}.ac"
                with contextlib.redirect_stdout(sys.stderr):  # its report, not a hash line
                    status = cli_main(["compress", str(SAMPLE), str(out), "--model", location,
                                       "--bandwidth", str(bandwidth)])
                if status != 0:
                    raise SystemExit(f"audiocodec compress exited {status}")
                data = out.read_bytes()
                lines.append(f"{name:18s} {bandwidth:5.1f} kb/s  cli {len(data):7d} B  {digest(data)}")
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
