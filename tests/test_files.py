"""Files compressed and decompressed in blocks (`audiocodec.coding.files`), resampling and loudness block by block."""
import random

import numpy as np
import pytest
import soundfile as sf
import torch

from audiocodec import api
from audiocodec.coding import chunked, files, signal
from audiocodec.errors import AudioReadError
from audiocodec.format.header import check_duration
from audiocodec.io.audio import AudioSource, BlockResampler, read_audio, resample
from audiocodec.io.loudness import LoudnessMeter, integrated_loudness
from tiny_models import tiny_codec


def _in_random_blocks(x: torch.Tensor, seed: int):
    rng = random.Random(seed)
    begin = 0
    while begin < x.shape[-1]:
        size = rng.choice([1, 7, 500, 3000, 20000])
        yield x[..., begin : begin + size]
        begin += size


@pytest.mark.parametrize("rates", [(44100, 24000), (24000, 44100), (48000, 24000), (8000, 24000), (44101, 24000),
                                   (16000, 16000)])
@pytest.mark.parametrize("length", [1, 100, 200_003])
def test_resampling_in_blocks_equals_resampling_the_whole_signal(rates, length):
    """Overlap-save with too small a margin, or a block boundary off a whole resampling step, changes the samples
    around every boundary."""
    x = torch.randn(2, length, generator=torch.Generator().manual_seed(length))
    resampler = BlockResampler(*rates, block=1000)
    parts = [resampler.push(block) for block in _in_random_blocks(x, length)] + [resampler.flush()]
    joined = torch.cat([part for part in parts if part is not None], dim=-1)
    assert torch.equal(joined, resample(x, *rates))


def test_loudness_in_blocks_is_the_whole_signals_to_the_bit():
    x = 0.1 * torch.randn(2, 24000 * 65 + 123) * torch.linspace(0.05, 1, 24000 * 65 + 123)
    meter = LoudnessMeter(24000)
    for block in _in_random_blocks(x, 0):
        meter.push(block)
    assert meter.loudness() == integrated_loudness(x, 24000)
    assert meter.peak == float(x.abs().max())


@pytest.fixture
def chunked_api(monkeypatch):
    """Chunks of 2 s, so that 25 s of audio (over 2 x 2 s) is coded in chunks, and blocks of 3.3 s."""
    monkeypatch.setattr(signal, "CHUNK_SECONDS", 2.0)
    monkeypatch.setattr(files, "BLOCK_SECONDS", 3.3)


def test_a_long_file_compresses_in_blocks_to_the_whole_signals_bytes(tmp_path, chunked_api):
    codec = tiny_codec(causal=True)
    rate = 11025  # resampled to the tiny model's 8 kHz, stereo mixed down
    wav = 0.05 * np.random.default_rng(0).standard_normal((rate * 25 + 17, 2)).astype(np.float32)
    wav[rate * 5 : rate * 6] *= 30  # a loud second: the level gain sees the whole file
    sf.write(tmp_path / "in.wav", wav, rate, subtype="FLOAT")
    data, peak = files.compress_file(AudioSource(tmp_path / "in.wav"), codec)
    assert data == api.compress(torch.from_numpy(wav.T.copy()), rate, model=codec)
    assert peak == float(np.abs(wav).max())

    files.decompress_file(data, tmp_path / "out.wav", codec)
    expected, expected_rate = api.decompress(data, model=codec)
    decoded, decoded_rate = read_audio(tmp_path / "out.wav")
    assert decoded_rate == expected_rate == rate and decoded.shape == tuple(expected.shape)
    assert np.abs(decoded - np.clip(expected.numpy(), -1, 1)).max() <= 1.5 / 2**15  # 16-bit rounding


def test_the_file_pipeline_holds_blocks_not_the_whole_file(tmp_path, chunked_api, monkeypatch):
    """Every piece that reaches the model, and every block written, is a few seconds long, not the file."""
    codec = tiny_codec(causal=True)
    sf.write(tmp_path / "in.flac", 0.1 * np.random.default_rng(1).standard_normal(8000 * 30), 8000)
    longest = {"in": 0, "out": 0}
    encode_chunks, write = files.encode_chunks, files.AudioSink.write

    def spy_encode(model, chunks):
        def measured():
            for chunk in chunks:
                longest["in"] = max(longest["in"], chunk.shape[-1])
                yield chunk
        return encode_chunks(model, measured())

    def spy_write(sink, block):
        longest["out"] = max(longest["out"], block.shape[-1])
        write(sink, block)

    monkeypatch.setattr(files, "encode_chunks", spy_encode)
    monkeypatch.setattr(files.AudioSink, "write", spy_write)
    data, _ = files.compress_file(AudioSource(tmp_path / "in.flac"), codec)
    files.decompress_file(data, tmp_path / "out.flac", codec)
    assert 0 < longest["in"] <= 8000 * 2.5 and 0 < longest["out"] <= 8000 * 4
    assert sf.info(str(tmp_path / "out.flac")).frames == 8000 * 30


def test_a_file_whose_header_promises_missing_samples_is_refused(tmp_path):
    path = tmp_path / "cut.wav"
    sf.write(path, np.zeros(8000, dtype=np.float32), 8000, subtype="PCM_16")
    path.write_bytes(path.read_bytes()[:44])  # the header alone, still claiming 8000 samples
    with pytest.raises(AudioReadError, match="cut.wav"):
        files.compress_file(AudioSource(path), tiny_codec(causal=True))


def test_a_cut_mp3_is_read_as_far_as_it_goes_and_as_read_whole(tmp_path):
    """On a short read `SoundFile.blocks` filled the missing part with stale samples from its reused buffer (MP3s
    take their length from a header that survives the cut); and libsndfile's MP3 decoder, read in pieces, drops
    samples at their boundaries (a tone after silence shows it)."""
    rate = 44100
    wav = np.zeros(rate * 6, dtype=np.float32)
    wav[rate:] = 0.2 * np.sin(np.arange(rate * 5) / 3)
    path = tmp_path / "full.mp3"
    sf.write(path, wav, rate, format="MP3")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    expected, _ = read_audio(path)
    source = AudioSource(path)
    blocks = torch.cat(list(source.blocks(rate)), dim=-1)
    assert expected.shape[1] < rate * 4 and torch.equal(blocks, torch.from_numpy(expected))
    assert source.frames == rate * 6 and source.frames_read == expected.shape[1]  # what the warning compares


@pytest.mark.parametrize("fmt", ["WAV", "W64", "AIFF", "AU"])
def test_a_file_cut_short_is_refused_on_opening(tmp_path, fmt):
    """libsndfile reads these as far as they go, so a recording cut by a full disk was coded as if complete."""
    path = tmp_path / f"cut.{fmt.lower()}"
    sf.write(path, 0.1 * np.ones(8000, np.float32), 8000, format=fmt, subtype="PCM_16")
    AudioSource(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    announced = r"(16000 bytes|8000 samples|a file of 16104 bytes)"  # Wave64's size is the whole file's
    for read in (AudioSource, read_audio):  # compress's reader, and evaluation's and the code counts'
        with pytest.raises(AudioReadError, match=rf"cut.\w+: cut short: its header announces {announced}"):
            read(path)


def test_a_wave64_announcing_gigabytes_it_lacks_is_cut_short(tmp_path):
    """Wave64 is for files too long for WAV: a size past WAV's 32-bit range is no "unknown" marker there."""
    path = tmp_path / "big.w64"
    sf.write(path, 0.1 * np.ones(8000, np.float32), 8000, format="W64", subtype="PCM_16")
    data = bytearray(path.read_bytes())
    data[16:24] = (6 * 10**9).to_bytes(8, "little")  # the riff chunk's size
    path.write_bytes(bytes(data))
    with pytest.raises(AudioReadError, match="cut short: its header announces a file of 6000000000 bytes"):
        AudioSource(path)
    data[16:24] = b"\xff" * 8  # -1, as a writer that cannot seek back leaves it
    path.write_bytes(bytes(data))
    assert AudioSource(path).frames == 8000


def test_a_wav_of_unknown_length_from_a_pipe_is_not_cut_short(tmp_path):
    """ffmpeg writes 0xFFFFFFFF as the sizes of a WAV it streams; a pad byte's slip is no cut either."""
    path = tmp_path / "piped.wav"
    sf.write(path, 0.1 * np.ones(8000, np.float32), 8000, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    data[4:8] = data[40:44] = b"\xff\xff\xff\xff"
    path.write_bytes(bytes(data))
    assert AudioSource(path).frames == 8000
    data[40:44] = (16000 + 2).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    assert AudioSource(path).frames == 8000


def test_the_chunked_path_is_chosen_on_the_resampled_length_api_compress_sees(tmp_path, chunked_api, monkeypatch):
    """44,101 Hz resamples by an approximate ratio (`resampling_ratio`): the exact one misjudged lengths at the
    20 s threshold, and such a file went through chunks where `api.compress` codes it whole."""
    from fractions import Fraction

    from audiocodec.io.audio import resampling_ratio

    codec, rate = tiny_codec(causal=True), 44101
    limit = 2 * signal.CHUNK_SECONDS * codec.sample_rate
    o, n = resampling_ratio(rate, codec.sample_rate)
    length = next(t for t in range(int(limit * rate / 8000) - 50, int(limit * rate / 8000) + 50)
                  if (-(-t * n // o) > limit) != (-(-t * Fraction(8000, rate)) > limit))
    sf.write(tmp_path / "in.wav", 0.1 * np.random.default_rng(2).standard_normal(length), rate, subtype="FLOAT")
    calls = []
    monkeypatch.setattr(files, "encode_chunks", lambda *args: calls.append(1) or chunked.encode_chunks(*args))
    files.compress_file(AudioSource(tmp_path / "in.wav"), codec)
    assert bool(calls) == signal.in_chunks(codec, len(resample(torch.zeros(length), rate, 8000)))


def test_a_model_with_segments_codes_a_long_file_one_segment_at_a_time(tmp_path, chunked_api, monkeypatch):
    """EnCodec's 48 kHz layout (non-causal, normalised 0.3 s segments here): the file's bytes are `api.compress`'s
    exactly, and no piece that reaches the model or the output is longer than a segment or a block."""
    codec = tiny_codec(channels=2, normalize=True, segment=0.3, causal=False, norm="time_group_norm")
    wav = 0.1 * np.random.default_rng(2).standard_normal((8000 * 25, 2)).astype(np.float32)
    sf.write(tmp_path / "in.flac", wav, 8000)  # at the model's rate: the resampler holds blocks of its own
    wav = read_audio(tmp_path / "in.flac")[0]
    longest = {"in": 0, "out": 0}
    encode_segment, write = codec.encode_segment, files.AudioSink.write

    def spy_encode(segment, bandwidth=None):
        longest["in"] = max(longest["in"], segment.shape[-1])
        return encode_segment(segment, bandwidth)

    def spy_write(sink, block):
        longest["out"] = max(longest["out"], block.shape[-1])
        write(sink, block)

    monkeypatch.setattr(codec, "encode_segment", spy_encode)
    monkeypatch.setattr(files.AudioSink, "write", spy_write)
    data, _ = files.compress_file(AudioSource(tmp_path / "in.flac"), codec)
    assert longest["in"] == codec.segment_length
    assert data == api.compress(torch.from_numpy(wav), 8000, model=codec)

    files.decompress_file(data, tmp_path / "out.wav", codec)
    assert 0 < longest["out"] <= codec.segment_length
    expected, _ = api.decompress(data, model=codec)
    decoded, _ = read_audio(tmp_path / "out.wav")
    assert decoded.shape == tuple(expected.shape)
    assert np.abs(decoded - np.clip(expected.numpy(), -1, 1)).max() <= 1.5 / 2**15  # 16-bit rounding


def test_audio_longer_than_a_ac_file_holds_is_refused_before_any_work(tmp_path, monkeypatch):
    """At 1 Hz, 24 hours are 86,400 samples: the limit is found from the header, not after hours of coding."""
    from audiocodec.errors import InvalidArgumentError

    sf.write(tmp_path / "day.wav", np.full(24 * 3600 + 2, 0.1, np.float32), 1, subtype="FLOAT")
    codec = tiny_codec(causal=True)
    monkeypatch.setattr(codec, "encode", None)  # never reached
    with pytest.raises(AudioReadError, match=r"day.wav: 24.0 hours of audio, more than the 24 a .ac file holds"):
        files.compress_file(AudioSource(tmp_path / "day.wav"), codec)
    with pytest.raises(InvalidArgumentError, match="more than the 24 a .ac file holds"):
        api.compress(torch.zeros(1, 24 * 3600 + 2), 1, model=codec)
    # Overlapping segments code some audio twice: with half of each overlapping, 13 hours make 26 hours of frames
    # (the header would have been refused after the whole encode).
    segmented = tiny_codec(normalize=True, segment=0.3, overlap=0.5, causal=False, norm="time_group_norm")
    monkeypatch.setattr(segmented, "encode_segment", None)
    sf.write(tmp_path / "half.wav", np.full(13 * 3600, 0.1, np.float32), 1, subtype="FLOAT")
    with pytest.raises(AudioReadError, match="13.0 hours of audio make more code frames than a .ac file holds"):
        files.compress_file(AudioSource(tmp_path / "half.wav"), segmented)
    check_duration(11 * 3600, 1, segmented)  # 22 hours of frames fit


def test_upsampling_a_very_low_rate_resamples_bounded_pieces():
    """From 1 Hz to 24 kHz, a block of 2**18 input samples would make 6 billion outputs at once."""
    resampler = BlockResampler(1, 24000)
    pieces = [resampler.push(torch.zeros(1, 10)) for _ in range(30)] + [resampler.flush()]
    assert max(piece.shape[-1] for piece in pieces if piece is not None) <= 2**18
    assert sum(piece.shape[-1] for piece in pieces if piece is not None) == 300 * 24000
