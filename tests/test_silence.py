"""Digital silence decodes to exact zeros, the codes stay as they were, and very quiet audio is raised before
coding (then lowered back) instead of meeting the decoder's noise floor."""

import numpy as np
import pytest
import soundfile as sf
import torch

from audiocodec import api
from audiocodec.coding import files, signal, silence
from audiocodec.errors import FormatError
from audiocodec.format import bitstream
from audiocodec.io import loudness
from audiocodec.io.audio import AudioSource
from tiny_models import tiny_codec

CODEC = tiny_codec()
RATE = 16000  # the input's rate: the model's is 8000, so decoding resamples and the zeros must survive it


def _speech_with_pauses(seconds: float = 1.5) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    wav = 0.3 * np.sin(2 * np.pi * 300 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    wav[int(0.4 * RATE) : int(0.7 * RATE)] = 0  # a digital pause
    wav[int(1.2 * RATE) :] = 1e-6  # below half a 16-bit step: silent too
    return wav[None].astype(np.float32)


def test_digital_silence_decodes_to_exact_zeros():
    data = api.compress(np.zeros((2, RATE), dtype=np.float32), RATE, model=CODEC)
    header, _ = bitstream.unpack(data)
    assert header.silence == [(0, -(-RATE // bitstream.silence_unit(RATE, CODEC.frame_rate)))]
    audio, rate = api.decompress(data, model=CODEC)
    assert rate == RATE and audio.shape == (2, RATE) and not audio.any()


def test_pauses_decode_to_zeros_the_sound_around_them_does_not_and_the_codes_are_unchanged(monkeypatch):
    wav = _speech_with_pauses()
    data = api.compress(wav, RATE, model=CODEC, loudness_range=None)
    header, payload = bitstream.unpack(data)
    unit = bitstream.silence_unit(RATE, CODEC.frame_rate)
    covered = np.zeros(wav.shape[1], dtype=bool)
    for start, count in header.silence:
        covered[start * unit : (start + count) * unit] = True
    assert not (np.abs(wav[0][covered]) >= silence.QUIET).any()  # only silent input is noted
    assert covered[int(0.41 * RATE) : int(0.69 * RATE)].all() and covered[int(1.21 * RATE) :].all()
    audio, _ = api.decompress(data, model=CODEC)
    assert not audio[0, covered].any() and (audio[0, ~covered] != 0).float().mean() > 0.9

    monkeypatch.setattr(silence, "find_runs", lambda audio, unit: [])  # the same audio without the note
    plain_header, plain_payload = bitstream.unpack(api.compress(wav, RATE, model=CODEC, loudness_range=None))
    assert plain_payload == payload and plain_header.silence is None
    assert len(data) - len(api.compress(wav, RATE, model=CODEC, loudness_range=None)) <= 1 + 3 * 2 * 2


@pytest.mark.parametrize("block", [0.013, 0.25])
def test_files_coded_block_by_block_note_the_same_runs_and_write_the_same_zeros(block, monkeypatch, tmp_path):
    wav = np.concatenate([_speech_with_pauses()] * 3, axis=1)
    sf.write(tmp_path / "in.wav", wav.T, RATE, subtype="FLOAT")
    whole = bitstream.unpack(api.compress(wav, RATE, model=CODEC))[0]
    monkeypatch.setattr(files, "BLOCK_SECONDS", block)
    monkeypatch.setattr(signal, "CHUNK_SECONDS", 0.5)  # long enough to be coded in blocks
    data, _ = files.compress_file(AudioSource(tmp_path / "in.wav"), CODEC)
    header, _ = bitstream.unpack(data)
    assert header.silence == whole.silence
    files.decompress_file(data, tmp_path / "out.wav", CODEC)
    blocks = sf.read(tmp_path / "out.wav", dtype="int16")[0]
    reference, _ = api.decompress(data, model=CODEC)
    unit = bitstream.silence_unit(RATE, CODEC.frame_rate)
    for start, count in header.silence:
        assert not blocks[start * unit : (start + count) * unit].any()
        assert not reference[0, start * unit : (start + count) * unit].any()


def test_silent_runs_round_trip_and_bad_ones_are_refused():
    header, payload = bitstream.unpack(api.compress(np.zeros((1, RATE), dtype=np.float32), RATE, model=CODEC))
    header.silence = [(0, 5), (9, 1), (300, 20)]
    assert bitstream.unpack(bitstream.pack(header, payload))[0].silence == header.silence
    for runs in ([(5, 5), (9, 1)], [(0, 0)], [(0, 10**6)], [], [(1, 2, 3)]):
        header.silence = runs
        with pytest.raises(FormatError, match="silent run"):
            header.validate()


def test_audio_below_the_loudness_gate_is_raised_before_coding():
    rng = np.random.default_rng(0)
    quiet = torch.from_numpy((rng.standard_normal((1, 8000)) * 10 ** (-90 / 20)).astype(np.float32))
    gain = loudness.level_gain(quiet, 8000, loudness.LOUDNESS_RANGE)
    assert gain is not None and 900 < gain <= bitstream.MAX_GAIN  # +60 dB at most
    assert loudness.level_gain(torch.zeros(1, 8000), 8000, loudness.LOUDNESS_RANGE) is None  # silence: nothing to raise
    loud_enough = quiet * 10 ** (50 / 20)  # -40 dBFS: raised to the range as before
    assert loudness.level_gain(loud_enough, 8000, loudness.LOUDNESS_RANGE) > 1
