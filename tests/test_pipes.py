"""Standard input, standard output and FIFOs: the same audio as files, without holding recordings in memory."""
import io
import os
import threading

import numpy as np
import pytest
import soundfile as sf

from audiocodec.errors import AudioReadError
from audiocodec.io import audio as audio_io
from audiocodec.io.audio import AudioSink, AudioSource, wav_header, write_audio


class _Stdout:
    """A stand-in for `sys.stdout` whose `buffer` records what was written, and cannot seek (as a pipe)."""

    def __init__(self):
        self.buffer = _Pipe()


class _Pipe(io.RawIOBase):
    def __init__(self):
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.data += bytes(data)
        return len(data)


def _audio(channels: int = 3, length: int = 5003) -> np.ndarray:
    wav = 0.1 * np.random.default_rng(0).standard_normal((channels, length)).astype(np.float32)
    wav[:, :7] = [[1.5], [-2.0], [0.999]][:channels]  # clipped, and kept, as in a file
    return wav


def test_a_wav_on_standard_output_is_streamed_and_is_the_file_written_to_disk(tmp_path, monkeypatch):
    wav = _audio()
    write_audio(tmp_path / "disk.wav", wav, 22050)
    stdout = _Stdout()
    monkeypatch.setattr(audio_io.sys, "stdout", stdout)
    with AudioSink("-", 22050, 3, wav.shape[1]) as sink:
        sink.write(wav[:, :1000])
        # Before the end: the header with the final length and the first block are already out, for a player.
        assert len(stdout.buffer.data) == 44 + 1000 * 3 * 2
        sink.write(wav[:, 1000:])
    assert sink.clipped == 14
    assert bytes(stdout.buffer.data) == (tmp_path / "disk.wav").read_bytes()


@pytest.mark.parametrize("name", ["pipe.wav", "pipe.flac", "pipe"])
def test_a_fifo_gets_the_bytes_of_the_file_written_to_disk(tmp_path, name):
    wav = _audio(2)
    disk = tmp_path / ("disk" + (os.path.splitext(name)[1] or ".wav"))
    write_audio(disk, wav, 44100)
    fifo = tmp_path / name
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    write_audio(fifo, wav, 44100)
    reader.join(timeout=60)
    assert received == [disk.read_bytes()]


def test_writing_more_samples_than_the_header_promised_is_refused(monkeypatch):
    monkeypatch.setattr(audio_io.sys, "stdout", _Stdout())
    with pytest.raises(ValueError, match="11 samples written to an audio file of 10"):
        with AudioSink("-", 8000, 1, 10) as sink:
            sink.write(np.zeros((1, 11), np.float32))


def test_a_wav_beyond_4_gib_says_its_length_is_unknown_and_reads_to_its_end():
    header = wav_header(48000, 2, 2**30)
    assert header[4:8] == header[-4:] == b"\xff\xff\xff\xff"
    exact = wav_header(48000, 2, 1000)
    assert int.from_bytes(exact[4:8], "little") == len(exact) - 8 + 4000
    samples = np.arange(-500, 500, dtype=np.int16).reshape(-1, 2)
    read, rate = sf.read(io.BytesIO(header + samples.tobytes()), dtype="int16")
    assert rate == 48000 and np.array_equal(read, samples)


def _stdin(monkeypatch, data: bytes) -> None:
    class Stdin:
        buffer = io.BufferedReader(io.BytesIO(data))

    monkeypatch.setattr(audio_io.sys, "stdin", Stdin)


def test_standard_input_beyond_the_memory_limit_is_read_from_a_temporary_file(tmp_path, monkeypatch):
    wav = _audio(2, 30000)
    sf.write(tmp_path / "in.wav", wav.T, 16000, subtype="PCM_16")
    monkeypatch.setattr(audio_io, "SPOOL_MEMORY_BYTES", 10_000)
    _stdin(monkeypatch, (tmp_path / "in.wav").read_bytes())
    piped, disk = AudioSource("-"), AudioSource(tmp_path / "in.wav")
    assert piped.source._rolled  # on disk, not in memory
    for _ in range(2):  # compress reads its input twice
        blocks = [np.asarray(block) for block in piped.blocks(7000)]
        assert np.array_equal(np.concatenate(blocks, axis=1), np.concatenate(list(disk.blocks(7000)), axis=1))
    _stdin(monkeypatch, b"")
    with pytest.raises(AudioReadError, match="standard input: empty, expected an audio file"):
        AudioSource("-")


def test_an_error_on_standard_input_names_it_and_no_python_object(monkeypatch):
    _stdin(monkeypatch, b"hi\n")
    with pytest.raises(AudioReadError) as error:
        AudioSource("-")
    assert str(error.value) == "standard input: not a readable audio file (Format not recognised.)"


def test_nan_samples_and_refused_writes_leave_no_output_and_name_the_file(tmp_path, monkeypatch):
    from audiocodec.errors import AudioCodecError

    wav = _audio(1)
    wav[0, 100] = np.nan  # written, it would be -32768, a full-scale click
    with pytest.raises(AudioCodecError, match=r"out.wav: the decoded audio holds NaN or infinite samples"):
        write_audio(tmp_path / "out.wav", wav, 8000)

    def full_disk(file, data):
        raise sf.LibsndfileError(2)  # SF_ERR_SYSTEM: what a failed write(2) becomes

    monkeypatch.setattr(sf.SoundFile, "write", full_disk)
    with pytest.raises(AudioCodecError, match=r"out.flac: could not be written \(System error.*is the disk full"):
        write_audio(tmp_path / "out.flac", _audio(1), 8000)
    assert list(tmp_path.iterdir()) == []


class _ClosingPipe(_Pipe):
    """A pipe whose reader went after `limit` bytes: `sys.stdout.buffer.write` then took those and reported only
    them, without an error (seen with `compress long.wav - | head -c 10`: 65,536 bytes of 434,484)."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit = limit

    def write(self, data) -> int:
        taken = bytes(data)[: self.limit - len(self.data)]
        self.data += taken
        return len(taken)


def test_a_short_write_to_standard_output_is_an_error_not_success(monkeypatch):
    from audiocodec.errors import AudioCodecError

    stdout = _Stdout()
    stdout.buffer = _ClosingPipe(100)
    monkeypatch.setattr(audio_io.sys, "stdout", stdout)
    with pytest.raises(AudioCodecError, match="standard output was closed after 100 of 1000 bytes"):
        audio_io.write_bytes("-", bytes(1000))


def test_a_broken_pipe_on_the_command_line_is_one_line_and_exit_1(monkeypatch, capsys):
    from audiocodec import cli
    from audiocodec.cli import info

    def broken(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(info, "run_info", broken)  # the parser takes it when main builds it
    assert cli.main(["info", "x.ac"]) == 1
    assert capsys.readouterr().err.strip() == ("audiocodec: error: the output's reader closed it before everything "
                                               "was written")
