"""Reading and writing audio files safely, and bringing audio to a model's rate and channel count.

Every failure a user can cause (missing, empty, truncated or non-audio file, NaN/Inf samples, an unsupported
output extension) is an `AudioReadError` or `AudioCodecError` with a one-line message naming the file. Outputs
are written atomically (`atomic.py`), so an interrupted run never leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import operator
import os
import re
import shutil
import stat
import sys
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np
import soundfile as sf
import torch

from ..errors import AudioCodecError, AudioReadError, InvalidArgumentError, OutputExistsError
from ..limits import MAX_CHANNELS, MAX_SAMPLE_RATE
from .atomic import atomic_path, is_special_file

OUTPUT_FORMATS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16")}
FLAC_MAX_CHANNELS = 8
#: Extensions taken for audio: training, evaluation and folder compression read files with these from folders, and
#: `compress` refuses to give one to its `.ac` output.
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".au", ".w64"}
STDIO = "-"
#: Standard input, pipes and FIFOs are copied (libsndfile needs to seek, and `compress` reads its input twice)
#: into memory up to this size, and on to a temporary file beyond it.
SPOOL_MEMORY_BYTES = 64 << 20


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Samples `[channels, time]` as float32, and the sample rate; `-` reads standard input. A file cut short is
    refused, as by `AudioSource`: evaluating or counting codes on the part that remains would go unnoticed."""
    source, name = _open(path)
    try:
        with sf.SoundFile(source) as file:
            sample_rate, log = file.samplerate, file.extra_info
            data = file.read(dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as error:
        raise _not_audio(name, error) from None
    _check_layout(name, data.shape[0], data.shape[1], sample_rate)
    _check_whole(name, log)
    _check_finite(name, data)
    return np.ascontiguousarray(data.T), int(sample_rate)


#: Formats read whole even by `AudioSource`: libsndfile 1.2's MP3 decoder, read in pieces, can drop samples at
#: the pieces' boundaries (a 44.1 kHz tone read in 1 s pieces came back at 14 dB SNR instead of 38).
WHOLE_READ_FORMATS = {"MP3"}


class AudioSource:
    """An audio file read block by block (`blocks`, as often as needed), for recordings too long to hold whole;
    the same checks and errors as `read_audio`, the format's made on opening. Standard input and pipes are copied
    first (`_spooled`); MP3 files' samples are held in memory (`WHOLE_READ_FORMATS`)."""

    def __init__(self, path: str | Path):
        self.source, self.name = _open(path)
        try:
            with sf.SoundFile(self._rewound()) as file:
                self.sample_rate, self.channels, self.frames = int(file.samplerate), file.channels, file.frames
                self.format, log = file.format, file.extra_info
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as error:
            raise _not_audio(self.name, error) from None
        _check_layout(self.name, self.frames, self.channels, self.sample_rate)
        _check_whole(self.name, log)
        self.frames_read: int | None = None  # once `blocks` has run to the end (an MP3's header can promise more)

    def blocks(self, size: int) -> Iterator[torch.Tensor]:
        """Float32 blocks `[channels, t]` of `size` samples (the last one shorter), from the start."""
        try:
            with sf.SoundFile(self._rewound()) as file:
                read = 0
                if self.format in WHOLE_READ_FORMATS:
                    whole = file.read(dtype="float32", always_2d=True)
                    _check_finite(self.name, whole)
                    read = whole.shape[0]
                    yield from torch.from_numpy(np.ascontiguousarray(whole.T)).split(size, dim=-1)
                else:
                    # `read`, not `SoundFile.blocks`: on a short read (a file cut short), `blocks` still yields
                    # full blocks from a reused buffer, stale samples after the real ones.
                    while (block := file.read(size, dtype="float32", always_2d=True)).shape[0]:
                        _check_finite(self.name, block)
                        read += block.shape[0]
                        yield torch.from_numpy(np.ascontiguousarray(block.T))
                self.frames_read = read
        except (sf.LibsndfileError, RuntimeError) as error:
            raise _not_audio(self.name, error) from None

    def _rewound(self) -> object:
        if not isinstance(self.source, bytes):
            self.source.seek(0)
        return self.source


def _open(path: str | Path) -> tuple[object, str]:
    """What soundfile should read for `path` (the path itself, as bytes, or a copy of standard input or of a
    pipe), and the name errors give it; a missing, empty or unreadable input is an `AudioReadError`."""
    name = "standard input" if str(path) == STDIO else str(path)
    if str(path) == STDIO:
        if _is_device(sys.stdin.buffer):
            raise AudioReadError(f"{name} is a terminal or a device, not audio: pipe a file in, or name one")
        return _spooled(sys.stdin.buffer, name), name
    if not Path(path).exists():
        raise AudioReadError(f"{name}: no such file")
    if Path(path).is_dir():
        raise AudioReadError(f"{name}: is a directory, expected an audio file")
    if stat.S_ISCHR(os.stat(path).st_mode):  # /dev/zero would be copied until the disk is full
        raise AudioReadError(f"{name}: is a device, expected an audio file")
    if is_special_file(path):  # a FIFO or <(...) can be read once, and libsndfile may need to seek: copy it
        with open(path, "rb") as handle:
            return _spooled(handle, name), name
    with open(path, "rb"):  # an unreadable file is an OSError naming it (libsndfile: "System error")
        pass
    return os.fsencode(path), name  # bytes: soundfile encodes a str path strictly, refusing non-UTF-8 names


#: Lines of libsndfile's log (`SoundFile.extra_info`) where a header's data size exceeds what the file holds:
#: WAV's and AU's byte counts, AIFF's sample counts.
_DATA_SIZE = re.compile(r"^\s*(?:data|Data Size)\s*:\s*(\d+) \(should be (\d+)\)", re.M)
_AIFF_FRAMES = re.compile(r"Frame count read from 'COMM' chunk \((\d+)\) not equal to frame count\s*\n?"
                          r"\*\*\* calculated from length of 'SSND' chunk \((\d+)\)")
#: Wave64's, whose data chunk's log line has no "should be": its whole file's size against the file's length (its
#: sizes are 64-bit, for files too long for WAV, so no 32-bit "unknown" value applies).
_W64_SIZE = re.compile(r"^riff : (\d+) \(should be (\d+)\)", re.M)
#: Data sizes that stand for "unknown" in headers written to pipes (ffmpeg's 0xFFFFFFFF, and sox's).
_UNKNOWN_SIZE = 0x7FFFF000


def cut_short(log: str) -> str | None:
    """What a file whose header promises more audio than it holds lacks, from libsndfile's log; None when whole.

    libsndfile reads such a WAV, Wave64, AIFF or AU file as far as it goes and says so only in its log, so a
    recording cut by a full disk or an interrupted copy would be coded as if complete. A few bytes short is a padding
    slip of the writing program, not a cut."""
    for match in _DATA_SIZE.finditer(log):
        declared, held = map(int, match.groups())
        if held + 8 < declared < _UNKNOWN_SIZE:
            return f"its header announces {declared} bytes of audio, the file holds {held}"
    if (match := _AIFF_FRAMES.search(log)) and int(match[1]) > int(match[2]):
        return f"its header announces {match[1]} samples, the file holds {match[2]}"
    if (match := _W64_SIZE.search(log)) and int(match[2]) + 8 < int(match[1]):  # 64-bit; "unknown" is -1
        return f"its header announces a file of {match[1]} bytes, the file holds {match[2]}"
    return None


def _is_device(stream: BinaryIO) -> bool:
    """Whether `stream` reads from a terminal or a device such as /dev/zero (endless, or never what was meant)."""
    try:
        return stat.S_ISCHR(os.fstat(stream.fileno()).st_mode)
    except (AttributeError, OSError, ValueError):  # not a file descriptor (a stream in memory)
        return False


def _spooled(stream: BinaryIO, name: str) -> tempfile.SpooledTemporaryFile:
    """A seekable copy of `stream`, read to its end and rewound: in memory up to `SPOOL_MEMORY_BYTES`, then in a
    temporary file (deleted when closed), so that hours piped in from ffmpeg or sox need disk, not memory."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)
    shutil.copyfileobj(stream, spool, 1 << 20)
    if not spool.tell():
        raise AudioReadError(f"{name}: empty, expected an audio file")
    spool.seek(0)
    return spool


def _not_audio(name: str, error: Exception) -> AudioReadError:
    detail = str(error).splitlines()[0] if str(error) else type(error).__name__
    detail = re.sub(r"^Error opening (b?'.*'|b?\".*\"|<.*?>): ", "", detail)  # soundfile names the path or object again
    # libsndfile's words for an MP3 it cannot decode, and for a header without a rate, mislead: the file is there
    # and the error is not the library's.
    detail = {"File does not exist or is not a regular file (possibly a pipe?).": "damaged or unsupported data",
              "Internal error : SF_INFO struct incomplete.": "the header is incomplete: a sample rate of 0?"}.get(
        detail, detail)
    return AudioReadError(f"{name}: not a readable audio file ({detail})")


def _check_layout(name: str, frames: int, channels: int, sample_rate: int) -> None:
    if frames == 0:
        raise AudioReadError(f"{name}: the file holds no audio samples")
    if channels > MAX_CHANNELS:
        raise AudioReadError(f"{name}: {channels} channels, more than the {MAX_CHANNELS} a .ac file holds")
    try:
        check_sample_rate(sample_rate)
    except InvalidArgumentError as error:
        raise AudioReadError(f"{name}: {error}") from None


def _check_whole(name: str, log: str) -> None:
    if (cut := cut_short(log)) is not None:
        raise AudioReadError(f"{name}: cut short: {cut}")


def _check_finite(name: str, data: np.ndarray) -> None:
    # A NaN/Inf makes the sum non-finite; the sum needs no full-size temporary, the exact check runs only if it is.
    if not np.isfinite(data.sum()) and not np.isfinite(data).all():
        raise AudioReadError(f"{name}: the audio contains NaN or infinite samples")


def read_manifest(manifest: Path, error: type[AudioCodecError] = AudioCodecError) -> list[dict]:
    """The entries of a manifest, as training and evaluation both read it: one path a line, or a JSON object with
    a "path" string (any line that starts with "{"); blank lines and lines starting with "#" are skipped. Each
    entry is a dict with at least "path", as written (relative paths are the caller's to resolve). Problems raise
    `error` naming the manifest, and the line."""
    try:
        text = manifest.read_text(encoding="utf-8")
    except UnicodeDecodeError:  # an audio file, most likely, given where a list of them goes
        raise error(f"{manifest}: not a manifest (give a folder of audio files, or a text or JSONL list of their "
                    f"paths)") from None
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith("{"):
            entries.append({"path": line})
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as decoding:
            raise error(f"{manifest}:{number}: not valid JSON ({decoding.msg})") from None
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise error(f'{manifest}:{number}: expected a JSON object with a "path" string')
        entries.append(entry)
    if not entries:
        raise error(f"{manifest}: the manifest lists no files")
    return entries


def files_below(root: str | Path, suffixes: set[str] = AUDIO_SUFFIXES) -> list[Path]:
    """Regular files in `root` and below whose extension is one of `suffixes`, sorted; links to folders are
    followed, each real folder once (a link back up the tree is no loop), and the paths keep the links' names."""
    found, seen = [], set()
    for folder, subfolders, names in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            subfolders.clear()
            continue
        seen.add(real)
        found += [Path(folder) / name for name in names
                  if Path(name).suffix.lower() in suffixes and os.path.isfile(os.path.join(folder, name))]
    return sorted(found)


def check_sample_rate(sample_rate: object) -> int:
    """`sample_rate` as an int (NumPy integers too), within the rates a `.ac` file can record."""
    try:
        if isinstance(sample_rate, bool):
            raise TypeError
        rate = operator.index(sample_rate)
    except TypeError:
        raise InvalidArgumentError(f"sample_rate must be an integer, got {sample_rate!r}") from None
    if not 0 < rate <= MAX_SAMPLE_RATE:
        raise InvalidArgumentError(f"sample rate {rate} Hz is out of range: a .ac file records 1 to "
                                   f"{MAX_SAMPLE_RATE} Hz")
    return rate


def to_model_format(wav: torch.Tensor, sample_rate: int, target_rate: int, target_channels: int) -> torch.Tensor:
    """`[C, T]` at `sample_rate` -> `[target_channels, T']` at `target_rate` (mixing down or duplicating)."""
    return resample(remix(wav, target_channels), sample_rate, target_rate)


#: Bound on the product of the two rates once divided by their greatest common divisor. torchaudio's resampling
#: kernel has about that many taps, so rates with no large common factor (44,101 Hz to 24,000 Hz) would need
#: gigabytes. Every pair of common rates (8 to 384 kHz) is far below it.
MAX_RATIO_PRODUCT = 1 << 18


def resampling_ratio(from_rate: int, to_rate: int) -> tuple[int, int]:
    """The `(from, to)` pair `resample` uses: the rates divided by their common divisor, or, when those are too
    large to resample with bounded memory, the closest ratio within `MAX_RATIO_PRODUCT` (for 44,101 Hz to
    24,000 Hz, 509 / 277: a change of speed of 2 parts per million, far below what can be heard)."""
    exact = Fraction(from_rate, to_rate)
    limit = int(math.isqrt(MAX_RATIO_PRODUCT * exact.denominator // exact.numerator) or 1)
    ratio = exact
    while ratio.numerator * ratio.denominator > MAX_RATIO_PRODUCT:
        ratio = exact.limit_denominator(limit)
        limit = max(1, limit * 7 // 8)
    return ratio.numerator, ratio.denominator


def resample(wav: torch.Tensor, from_rate: int, to_rate: int) -> torch.Tensor:
    """`torchaudio.functional.resample` along the last axis, with memory bounded whatever the rates
    (`resampling_ratio`): `ceil(T * to_rate / from_rate)` samples, up to that approximation."""
    if from_rate == to_rate:
        return wav
    import torchaudio.functional as AF

    return AF.resample(wav, *resampling_ratio(from_rate, to_rate))


class BlockResampler:
    """`resample` block by block: `push` blocks `[C, t]` of one signal, then `flush`; the outputs, joined, equal
    `resample(whole signal)` up to float rounding, with memory bounded by the block sizes.

    Resampling by `o / n` (the reduced ratio) maps each `o` input samples to `n` output samples, and torchaudio's
    kernel reaches under `7 o / min(o, n)` samples to either side. Each group of whole `o`-sample steps is
    resampled with that much real input around it, and the outputs of the margins are dropped (overlap-save). At
    the signal's two ends there is no margin, and the zero padding is the whole signal's own.
    """

    def __init__(self, from_rate: int, to_rate: int, block: int = 1 << 18):
        self.ratio = resampling_ratio(from_rate, to_rate) if from_rate != to_rate else (1, 1)
        o, n = self.ratio
        self.margin = -(-(7 * o // min(o, n) + 1) // o) * o  # whole steps
        self.block = max(1, block // max(o, n)) * o  # whole steps, and at most about `block` outputs (1 Hz up)
        self.held: torch.Tensor | None = None  # input from `self.start` on
        self.start = 0  # input index of held[..., 0]
        self.done = 0  # input index up to which outputs are out (a multiple of o)

    def push(self, x: torch.Tensor) -> torch.Tensor | None:
        """The outputs that `x` completes (None when none)."""
        if self.ratio == (1, 1):
            return x
        self.held = x if self.held is None else torch.cat([self.held, x], dim=-1)
        end = self.start + self.held.shape[-1]
        ready = (end - self.margin - self.done) // self.block * self.block
        return self._resample(self.done + ready, final=False) if ready > 0 else None

    def flush(self) -> torch.Tensor | None:
        """The outputs still held back, once the signal has ended."""
        if self.ratio == (1, 1) or self.held is None:
            return None
        return self._resample(self.start + self.held.shape[-1], final=True)

    def _resample(self, until: int, final: bool) -> torch.Tensor:
        import torchaudio.functional as AF

        o, n = self.ratio
        begin = max(0, self.done - self.margin)
        stop = self.start + self.held.shape[-1] if final else until + self.margin
        y = AF.resample(self.held[..., begin - self.start : stop - self.start], o, n)
        skip = (self.done - begin) // o * n
        out = y[..., skip:] if final else y[..., skip : skip + (until - self.done) // o * n]
        self.done = until
        keep = max(0, self.done - self.margin)
        self.held, self.start = self.held[..., keep - self.start :], keep
        return out


def remix(wav: torch.Tensor, channels: int) -> torch.Tensor:
    """Mix `[C, T]` to `channels`: average to mono, or duplicate mono to every channel."""
    if wav.shape[0] == channels:
        return wav
    mono = wav.mean(dim=0, keepdim=True)
    return mono.expand(channels, -1).contiguous()


def check_output(path: str | Path, force: bool, source: str | Path | None = None) -> None:
    """Refuse, before any work is done, to overwrite an existing output (without `force`) or the input `source`
    (even with it), to write into a folder that does not exist, or to write binary data to a terminal (without
    `force`, as gzip does). Devices and FIFOs are written in place."""
    if str(path) == STDIO:
        if not force and sys.stdout.isatty():
            raise AudioCodecError("standard output is a terminal: redirect it to a file or a pipe (or use --force)")
        return
    if str(path).endswith(("/", os.sep)) or Path(path).is_dir():
        raise AudioCodecError(f"{path}: is a folder, expected an output file name")
    path = Path(path)
    if is_special_file(path):
        return
    if path.exists() and source is not None and _is_source(path, source):
        reading = " (standard input reads from it)" if str(source) == STDIO else ""
        raise AudioCodecError(f"{path}: is the input file{reading}; write the output under another name")
    if path.exists() and not force:
        raise OutputExistsError(f"{path}: already exists (use --force to overwrite it)")
    check_writable_folder(path)


#: File systems that hold the kernel's state, not files: writing an output there is always a mistake.
KERNEL_FOLDERS = (Path("/proc"), Path("/sys"))


def check_writable_folder(path: Path) -> None:
    """Refuse, before any coding, an output whose folder is missing, not a folder, not writable, or under /proc or
    /sys: outputs are written to a temporary file beside them, so the test is creating one there."""
    import tempfile

    folder = path.parent.resolve()
    if any(folder == root or root in folder.parents for root in KERNEL_FOLDERS):
        raise AudioCodecError(f"{path}: is under /{folder.parts[1]}, which holds the kernel's state, not files")
    if not folder.exists():
        raise AudioCodecError(f"{path.parent}: no such directory")
    if not folder.is_dir():
        raise AudioCodecError(f"{path.parent}: is not a directory")
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".audiocodec-check-"):
            pass
    except OSError as error:
        raise AudioCodecError(f"{path.parent}: cannot write there ({error.strerror or error})") from None


def _is_source(path: Path, source: str | Path) -> bool:
    """Whether `path` is the input: the same file, or the file standard input is redirected from (`- out < out`)."""
    if str(source) != STDIO:
        return os.path.samefile(path, source)
    try:
        stdin = os.fstat(sys.stdin.fileno())
    except (AttributeError, OSError, ValueError):  # no standard input, or one without a descriptor
        return False
    output = os.stat(path)
    return stat.S_ISREG(stdin.st_mode) and (stdin.st_dev, stdin.st_ino) == (output.st_dev, output.st_ino)


def check_audio_output(path: str | Path, force: bool, source: str | Path | None = None) -> None:
    check_output(path, force, source)
    if str(path) != STDIO and not is_special_file(path) and Path(path).suffix.lower() not in OUTPUT_FORMATS:
        raise AudioCodecError(f"{path}: unsupported output format; use a .wav or .flac file name")


def check_output_channels(path: str | Path, channels: int) -> None:
    """Refuse, before decoding, an audio output whose format cannot hold `channels` channels."""
    if Path(path).suffix.lower() == ".flac" and channels > FLAC_MAX_CHANNELS:
        raise AudioCodecError(f"{path}: FLAC holds at most {FLAC_MAX_CHANNELS} channels and the audio has {channels}; "
                              f"write a .wav file")


def write_all(stream: BinaryIO, data: bytes, name: str = "standard output") -> None:
    """`stream.write(data)`, refusing a short write: a pipe whose reader has gone can take part of the data and
    report only that, without an error (`compress long.wav - | head -c 10`: 65,536 bytes of 434,484)."""
    written = stream.write(data)
    if written is not None and written < len(data):
        raise AudioCodecError(f"{name} was closed after {written} of {len(data)} bytes")


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` atomically (temporary file in the same folder, then rename); `-` is stdout."""
    if str(path) == STDIO:
        write_all(sys.stdout.buffer, data)
        sys.stdout.buffer.flush()
        return
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)


def write_audio(path: str | Path, wav: np.ndarray, sample_rate: int) -> int:
    """Write `[C, T]` as 16-bit WAV or FLAC by extension (WAV on standard output), clipped to [-1, 1], atomically;
    the number of samples that were clipped.

    Files are written block by block, so a long recording needs no second full-size copy.
    """
    block = 1 << 20
    with AudioSink(path, sample_rate, wav.shape[0], wav.shape[1]) as sink:
        for start in range(0, wav.shape[1], block):
            sink.write(wav[:, start : start + block])
    return sink.clipped


class AudioSink:
    """A 16-bit WAV or FLAC file (by extension; WAV on standard output) of `frames` samples per channel, written
    block by block; `clipped` counts the samples beyond [-1, 1].

    A file is put in place atomically when the `with` block ends without an error. Standard output and pipes
    cannot seek back to finish a header, so a WAV there starts with one that already holds the length (a player
    at the other end starts at once), and a FLAC is made in a temporary file (`_spooled`'s) and copied at the end.
    """

    def __init__(self, path: str | Path, sample_rate: int, channels: int, frames: int):
        self.path, self.sample_rate, self.channels, self.frames = path, sample_rate, channels, frames
        self.clipped = self.written = 0

    def __enter__(self) -> "AudioSink":
        fmt, subtype = OUTPUT_FORMATS.get(Path(self.path).suffix.lower(), OUTPUT_FORMATS[".wav"])
        self._stack = contextlib.ExitStack()
        self._stream = self._spool = self._file = None
        try:
            if str(self.path) == STDIO or is_special_file(self.path):
                self._stream = sys.stdout.buffer if str(self.path) == STDIO else self._stack.enter_context(
                    open(self.path, "wb"))
                if fmt == "WAV":
                    write_all(self._stream, wav_header(self.sample_rate, self.channels, self.frames), self._name())
                    return self
                target = self._spool = self._stack.enter_context(
                    tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES))
            else:
                target = os.fsencode(self._stack.enter_context(atomic_path(self.path)))
            self._file = self._stack.enter_context(sf.SoundFile(target, "w", self.sample_rate, self.channels,
                                                                subtype=subtype, format=fmt))
        except BaseException:
            self._stack.__exit__(*sys.exc_info())
            raise
        return self

    def write(self, block: np.ndarray) -> None:
        """Append `[channels, t]` samples."""
        part = block.T
        if not np.isfinite(part.sum()) and not np.isfinite(part).all():  # a NaN would be written as -32768
            raise AudioCodecError(f"{self.path}: the decoded audio holds NaN or infinite samples (a damaged model?)")
        self.clipped += int(np.count_nonzero(np.abs(part) > 1.0))
        self.written += part.shape[0]
        if self.written > self.frames:  # a streamed header would hold the wrong length
            raise ValueError(f"{self.written} samples written to an audio file of {self.frames}")
        if self._file is None:
            write_all(self._stream, pcm16(np.clip(part, -1.0, 1.0), self.sample_rate), self._name())
        else:
            with self._refused_writes():
                self._file.write(np.clip(part, -1.0, 1.0))

    def __exit__(self, *exc_info) -> None:
        with self._refused_writes():
            if exc_info[0] is None:
                try:
                    self._finish()
                except BaseException:
                    self._stack.__exit__(*sys.exc_info())
                    raise
            self._stack.__exit__(*exc_info)

    @contextlib.contextmanager
    def _refused_writes(self):
        """libsndfile reports a write the system refused (a full disk, a quota) as "System error", without the
        file's name; say which file."""
        try:
            yield
        except sf.LibsndfileError as error:
            raise AudioCodecError(f"{self.path}: could not be written ({error}; is the disk full?)") from None

    def _name(self) -> str:
        return "standard output" if str(self.path) == STDIO else str(self.path)

    def _finish(self) -> None:
        if self._spool is not None:
            self._file.close()  # writes the format's last header fields
            self._spool.seek(0)
            while block := self._spool.read(1 << 20):
                write_all(self._stream, block, self._name())
        if self._stream is not None:
            self._stream.flush()


def wav_header(sample_rate: int, channels: int, frames: int) -> bytes:
    """The header libsndfile writes for a 16-bit WAV, with the RIFF and data sizes of `frames` samples per
    channel filled in; beyond 4 GiB, the 0xFFFFFFFF that ffmpeg writes to pipes (readers read to the end)."""
    buffer = io.BytesIO()
    with sf.SoundFile(buffer, "w", sample_rate, channels, subtype="PCM_16", format="WAV"):
        pass
    header = bytearray(buffer.getvalue())
    if header[:4] != b"RIFF" or header[-8:] != b"data\0\0\0\0":
        raise ValueError("libsndfile wrote an unexpected WAV header")
    data_bytes = frames * channels * 2
    riff_bytes = len(header) - 8 + data_bytes
    unknown = riff_bytes > 0xFFFFFFFF
    header[4:8] = (0xFFFFFFFF if unknown else riff_bytes).to_bytes(4, "little")
    header[-4:] = (0xFFFFFFFF if unknown else data_bytes).to_bytes(4, "little")
    return bytes(header)


def pcm16(samples: np.ndarray, sample_rate: int) -> bytes:
    """`[t, channels]` float samples in [-1, 1] as interleaved little-endian 16-bit PCM, converted by libsndfile
    as it converts them into a WAV file."""
    buffer = io.BytesIO()
    with sf.SoundFile(buffer, "w", sample_rate, samples.shape[1], subtype="PCM_16", format="RAW",
                      endian="LITTLE") as raw:
        raw.write(samples)
    return buffer.getvalue()


def as_audio_tensor(wav: torch.Tensor | np.ndarray) -> torch.Tensor:
    """`[T]` or `[C, T]` array or tensor -> float32 tensor `[C, T]`; NaN/Inf or empty audio is refused.

    Integer PCM is scaled to [-1, 1) as soundfile reads it (int16 by 2**15, uint8 centred on 128, ...); bool and
    complex arrays are refused. More than 64 rows is refused too: it is almost always `[time, channels]`.
    """
    if not isinstance(wav, torch.Tensor):  # torch takes neither reversed strides nor a foreign byte order
        array = np.asarray(wav)
        wav = torch.as_tensor(np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("=")))
    wav = wav.detach()
    if wav.dim() == 1:
        wav = wav[None]
    if wav.dim() != 2:
        raise InvalidArgumentError(f"audio must be [time] or [channels, time], got shape {tuple(wav.shape)}")
    if wav.shape[-1] == 0 or wav.shape[0] == 0:
        raise AudioReadError("the audio is empty")
    limit = MAX_CHANNELS
    if wav.shape[0] > limit:
        hint = "; it looks like [time, channels]: pass its transpose" if wav.shape[1] <= limit else ""
        raise InvalidArgumentError(f"audio must be [channels, time] with at most {limit} channels, got shape "
                                   f"{tuple(wav.shape)}{hint}")
    wav = _pcm_to_float(wav.cpu())
    # A NaN/Inf makes the sum non-finite; the sum needs no full-size temporary, the exact check runs only if it is.
    if not torch.isfinite(wav.sum()) and not torch.isfinite(wav).all():
        raise AudioReadError("the audio contains NaN or infinite samples")
    return wav


def _pcm_to_float(wav: torch.Tensor) -> torch.Tensor:
    if wav.dtype == torch.bool or wav.is_complex():
        raise InvalidArgumentError(f"audio must hold real samples (float, or integer PCM), got {wav.dtype}")
    if wav.is_floating_point():
        return wav.to(torch.float32)
    if wav.dtype == torch.uint8:  # 8-bit PCM is unsigned, centred on 128
        return (wav.to(torch.float32) - 128) / 128
    if torch.iinfo(wav.dtype).min == 0:
        raise InvalidArgumentError(f"audio must be float or signed integer PCM (or uint8), got {wav.dtype}")
    return wav.to(torch.float64).div(2.0 ** (torch.iinfo(wav.dtype).bits - 1)).to(torch.float32)
