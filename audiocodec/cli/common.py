"""What the command modules share: loading a model, reading a `.ac` input, coding one file, reporting.

Heavy imports (torch) happen inside the functions, so that `audiocodec --help` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

if TYPE_CHECKING:
    from ..io.audio import AudioSource
    from ..model import Codec

#: The bundled speech sample (`demo`, benchmarks, tests).
SAMPLE = Path(__file__).parent.parent / "assets" / "sample.flac"


def default_bandwidths() -> str:
    """The embedded model's bandwidths, read from its config.json alone (`--help` loads no weights)."""
    from ..pretrained import embedded_config

    try:
        return ", ".join(f"{b:g}" for b in embedded_config()["config"]["target_bandwidths"])
    except (KeyError, TypeError, ValueError):
        return "none embedded"


def add_quiet_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="no progress (a bar on a terminal, else a line every few seconds, for audio over a "
                             "minute and for folders)")


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """`--device cpu|cuda`, for the commands that run a model."""
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                        help="where the model runs (cuda: the current GPU; the codes are the same either way, up to "
                             "float rounding)")


def load_model(directory: str | None, device: str = "cpu") -> Codec:
    """The model a command runs: the embedded default (None) or a model directory, prepared for inference on
    `device` ("cpu" or "cuda")."""
    import torch

    from ..api import default_model
    from ..errors import AudioCodecError
    from ..model import Codec

    if device == "cuda" and not torch.cuda.is_available():
        raise AudioCodecError("--device cuda: PyTorch sees no CUDA GPU")
    if device == "cpu":
        return default_model() if directory is None else Codec.from_pretrained(directory).prepare_for_inference()
    # Prepared where it runs (its kernels' layout depends on the device), and not the CPU's shared default.
    return Codec.from_pretrained(directory or "default").to(device).prepare_for_inference()


def read_input_bytes(path: str | Path) -> bytes:
    """The bytes of a `.ac` file, a pipe or a FIFO (`<(...)`), or standard input (`-`); of anything else only the
    first few, enough for `bitstream.unpack` to say what it is not (a 1 GB file, or /dev/zero, read whole first)."""
    from ..errors import FormatError
    from ..format.bitstream import MAGIC

    if str(path) != "-":
        file = Path(path)
        if file.is_dir():
            raise FormatError(f"{path}: is a directory, expected a .ac file")
        if not file.exists():
            raise FormatError(f"{path}: no such file")
    with contextlib.nullcontext(sys.stdin.buffer) if str(path) == "-" else open(path, "rb") as stream:
        head = stream.read(len(MAGIC))
        return head + stream.read() if head == MAGIC else head


def check_names(args: argparse.Namespace) -> None:
    """Refuse an empty input or output name (an unset shell variable): as a path it is the current folder."""
    from ..errors import AudioCodecError

    if "" in (args.input, args.output):
        which = "input" if args.input == "" else "output"
        raise AudioCodecError(f"an empty {which} name: give a file, a folder, or - for standard {which}")


#: Samples in an MP3 frame: less missing is the encoder's padding, not a cut.
MP3_FRAME = 1152


def compress_audio(model: Codec, source: AudioSource, output: str | Path, quiet: bool = False) -> int:
    """Compress the `AudioSource` `source` with `model` into `output`, in blocks (`files`); the bytes written."""
    from ..coding.files import compress_file
    from ..io.audio import write_bytes

    data, peak = compress_file(source, model, progress=show_progress(source.frames / source.sample_rate, quiet))
    if source.frames - source.frames_read >= MP3_FRAME:  # an MP3's header gives its length, the end may be gone
        report(f"warning: {source.name} holds {duration(source.frames_read / source.sample_rate)} of audio where "
                f"its header announces {duration(source.frames / source.sample_rate)}: is it cut short?")
    if peak > 1:
        report(f"warning: {source.name} peaks at {peak:.2f}, beyond full scale (1.0): the model was trained on "
                f"audio within it and the decoded 16-bit audio will be clipped; scale the input down first")
    write_bytes(output, data)
    return len(data)


def decompress_bytes(data: bytes, source: str | Path, output: str | Path,
                     get_model: Callable[[], Codec], quiet: bool = False) -> tuple[float, int, int]:
    """Decode `.ac` bytes read from `source` into the audio file `output`, in blocks (`files`), calling
    `get_model()` only once the header has been checked (a damaged file is refused before a model is loaded); the
    seconds, channels and sample rate written."""
    from ..coding.files import decompress_file
    from ..format import bitstream, checks
    from ..io.audio import check_output_channels

    with naming(str(source)):
        header, payload = bitstream.unpack(data)
        # Under the embedded model's tables when it coded the file; `read_encoded` checks again under the model's own.
        checks.check_sizes(header, payload, checks.code_tables(header.model_id))
        check_output_channels(output, header.original_channels)
        model = get_model()
        seconds = header.original_length / header.original_rate
        clipped = decompress_file(data, output, model, progress=show_progress(seconds, quiet))
    if clipped:
        report(f"warning: {output}: {clipped} decoded samples were beyond full scale and were clipped in the 16-bit "
                f"output")
    return seconds, header.original_channels, header.original_rate


@contextlib.contextmanager
def naming(path: str) -> Iterator[None]:
    """Prefix the input's name to the format and model errors raised inside (the bitstream does not know it)."""
    from ..errors import FormatError, ModelMismatchError

    try:
        yield
    except (FormatError, ModelMismatchError) as error:
        name = "standard input" if path == "-" else path
        raise type(error)(f"{name}: {error}") from None


def show_progress(seconds: float, quiet: bool = False) -> bool:
    """Progress (`io.progress`: a bar on a terminal, lines in a log) for files longer than a minute, unless
    `--quiet`."""
    return seconds > 60 and not quiet


def duration(seconds: float) -> str:
    """`1.25 s`; a clip under a tenth of a second in milliseconds (`0.0417 ms` for one sample at 24 kHz), where
    `0.00 s` would read as nothing; from two minutes on, in minutes (`2.5 min`)."""
    if seconds < 0.1:
        return f"{seconds * 1000:.3g} ms"
    return f"{seconds:.2f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def report(message: str) -> None:
    """A command's summary or warning, on stderr: stdout may be the output (`-`)."""
    print(message, file=sys.stderr)

