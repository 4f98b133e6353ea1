import json
import subprocess
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch

from audiocodec.api import compress, decompress
from audiocodec.errors import AudioReadError, ModelMismatchError
from tiny_models import tiny_codec


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("length", [1, 7, 8000, 8000 * 180 + 3])
def test_round_trip_restores_rate_channels_and_length(channels, length):
    codec = tiny_codec()
    wav = 0.1 * torch.randn(channels, length)
    wav_44k = wav if length < 10 else wav[:, : length // 2]
    for rate, audio in ((8000, wav), (11025, wav_44k)):
        out, out_rate = decompress(compress(audio, rate, model=codec), model=codec)
        assert out_rate == rate and out.shape == audio.shape and out.dtype == torch.float32


def test_every_bandwidth_decodes_to_what_the_model_decodes():
    codec = tiny_codec()
    wav = 0.1 * torch.randn(1, 4000)
    for bandwidth in codec.bandwidths:
        data = compress(wav, 8000, model=codec, bandwidth=bandwidth)
        out, _ = decompress(data, model=codec)
        codec.set_target_bandwidth(bandwidth)
        with torch.no_grad():
            expected = codec.decode(codec.encode(wav[None]))[0]
        torch.testing.assert_close(out, expected)
    assert len(compress(wav, 8000, model=codec, bandwidth=4.0)) < len(compress(wav, 8000, model=codec, bandwidth=8.0))


def test_stereo_model_with_segments_round_trips():
    codec = tiny_codec(channels=2, normalize=True, segment=0.1, causal=False, norm="time_group_norm")
    wav = 0.1 * torch.randn(2, 2500)
    out, rate = decompress(compress(wav, 8000, model=codec), model=codec)
    with torch.no_grad():
        expected = codec.decode(codec.encode(wav[None]))[0]
    torch.testing.assert_close(out, expected)


def test_another_model_is_refused_with_both_identities():
    a, b = tiny_codec(), tiny_codec(n_filters=6)
    data = compress(0.1 * torch.randn(1, 800), 8000, model=a)
    with pytest.raises(ModelMismatchError, match=f"model {a.model_id()}.*tiny \\({b.model_id()}\\)"):
        decompress(data, model=b)


def test_a_file_of_an_earlier_default_model_says_where_that_model_is(monkeypatch):
    from audiocodec import pretrained

    a, b = tiny_codec(), tiny_codec(n_filters=6)
    data = compress(0.1 * torch.randn(1, 800), 8000, model=a)
    monkeypatch.setitem(pretrained.EARLIER_DEFAULTS, a.model_id(), ("abc1234", "2026-01-01"))
    with pytest.raises(ModelMismatchError, match=r"it was the default model until 2026-01-01, in audiocodec's git "
                       r"history \(commit abc1234, docs/default-model.md\): pass it with --model$"):
        decompress(data, model=b)


def test_info_says_when_the_embedded_or_an_earlier_default_coded_a_file(monkeypatch):
    """A file names its model only by id; `info` says which default that was, and where an earlier one is."""
    from audiocodec import pretrained
    from audiocodec.cli.info import describe, info_text

    a = tiny_codec()
    data = compress(0.1 * torch.randn(1, 800), 8000, model=a)
    assert describe(data)["model_origin"] is None
    monkeypatch.setitem(pretrained.EARLIER_DEFAULTS, a.model_id(), ("abc1234", "2026-01-01"))
    facts = describe(data)
    assert info_text(facts).startswith(f"model: {a.model_id()}: the default model until 2026-01-01, in audiocodec's "
                                        f"git history (commit abc1234")
    assert describe(compress(0.1 * torch.randn(1, 2400), 24000))["model_origin"] == "the embedded default model"


def test_info_names_no_default_when_none_is_embedded_or_its_config_is_damaged(monkeypatch, tmp_path):
    from audiocodec import pretrained

    model_id = json.loads((pretrained.PRETRAINED_DIR / "default" / "config.json").read_text())["model_id"]
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", tmp_path)
    assert pretrained.model_origin(model_id) is None  # none embedded
    (tmp_path / "default").mkdir()
    for damaged in (b"{not json", b"\xff\xfe", b"[1, 2]", b'"a string"'):
        (tmp_path / "default" / "config.json").write_bytes(damaged)
        assert pretrained.model_origin(model_id) is None, damaged
    (tmp_path / "default" / "config.json").write_text(json.dumps({"model_id": model_id}))
    assert pretrained.model_origin(model_id) == "the embedded default model"


def test_info_does_not_load_torch(tmp_path):
    """It reads headers only: with torch, each call took 2.5 s instead of 0.2."""
    code = ("import sys; from audiocodec import cli; cli.main(['info', sys.argv[1]]); "
            "print('torch' in sys.modules)")
    path = tmp_path / "a.ac"
    path.write_bytes(compress(0.1 * torch.randn(1, 800), 8000, model=tiny_codec()))
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.splitlines()[-1] == "False", out.stderr


def test_the_earlier_defaults_are_those_git_history_shipped():
    """Each id's commit holds that model in audiocodec/pretrained/default (checked where the history is here)."""
    from audiocodec.pretrained import EARLIER_DEFAULTS

    root = Path(__file__).parents[1]
    for model_id, (commit, _) in EARLIER_DEFAULTS.items():
        shown = subprocess.run(["git", "-C", str(root), "show", f"{commit}:audiocodec/pretrained/default/config.json"],
                               capture_output=True, text=True)
        if shown.returncode != 0:
            pytest.skip("no git history here (an installed package or a shallow clone)")
        assert json.loads(shown.stdout)["model_id"] == model_id, commit


def test_bad_audio_is_refused():
    codec = tiny_codec()
    with pytest.raises(AudioReadError, match="NaN"):
        compress(np.array([0.0, np.nan, 0.1], dtype=np.float32), 8000, model=codec)
    with pytest.raises(AudioReadError, match="empty"):
        compress(np.zeros(0, dtype=np.float32), 8000, model=codec)
    with pytest.raises(ValueError, match="sample rate 0 Hz is out of range"):
        compress(np.zeros(10, dtype=np.float32), 0, model=codec)
    with pytest.raises(ValueError, match="sample_rate must be an integer"):
        compress(np.zeros(10, dtype=np.float32), 8000.5, model=codec)
    with pytest.raises(ValueError,
                       match=r"at most 64 channels, got shape \(800, 2\); it looks like \[time, channels\]"):
        compress(np.zeros((800, 2), dtype=np.float32), 8000, model=codec)
    for dtype in (bool, np.complex64, np.uint16):
        with pytest.raises(ValueError, match="audio must hold real samples|signed integer PCM"):
            compress(np.zeros(10, dtype=dtype), 8000, model=codec)
    with pytest.raises(TypeError, match="bytes of a .ac file"):
        decompress("speech.ac", model=codec)


def test_integer_pcm_is_scaled_as_soundfile_reads_it():
    from audiocodec.api import as_audio_tensor

    wave = 0.5 * np.sin(np.arange(800) / 7.0)
    expected = torch.from_numpy(wave.astype(np.float32))[None]
    for dtype, scale, offset in ((np.int16, 2**15, 0), (np.int32, 2**31, 0), (np.int8, 2**7, 0), (np.uint8, 2**7, 128)):
        pcm = np.round(wave * scale + offset).astype(dtype)
        torch.testing.assert_close(as_audio_tensor(pcm), expected, atol=1.0 / scale + 1e-7, rtol=0)
    # Any NumPy layout: reversed, big-endian, a transposed [T, C] array
    for array in (wave[::-1], wave.astype(">f4"), np.round(wave * 2**15).astype(">i2"), np.stack([wave, wave], 1).T):
        as_float = np.asarray(array, dtype=np.float32) / (2**15 if array.dtype.kind == "i" else 1)
        torch.testing.assert_close(as_audio_tensor(array), torch.from_numpy(as_float).reshape(-1, 800))
    # NumPy integer rates are integers too
    codec = tiny_codec()
    assert decompress(compress(np.zeros(800, dtype=np.float32), np.int64(8000), model=codec), model=codec)[1] == 8000


def test_rates_without_a_common_factor_resample_with_bounded_memory():
    """44,101 Hz against 8,000 Hz shares no factor: torchaudio's kernel would have 44,101 x 8,000 taps (1.4 GB)."""
    from audiocodec.io.audio import MAX_RATIO_PRODUCT, resampling_ratio

    codec = tiny_codec()
    for rate in (44101, 383999, 11111):
        original, coded = resampling_ratio(rate, codec.sample_rate)
        assert original * coded <= MAX_RATIO_PRODUCT and abs(original / coded * codec.sample_rate / rate - 1) < 2e-5
        tone = np.sin(2 * np.pi * 440 * np.arange(rate // 2) / rate).astype(np.float32)
        audio, back = decompress(compress(tone, rate, model=codec), model=codec)
        assert back == rate and audio.shape == (1, tone.shape[0])
    assert resampling_ratio(44100, 24000) == (147, 80)  # common rates stay exact


def _spy(monkeypatch, owner, name: str, calls: list) -> None:
    original = getattr(owner, name)
    monkeypatch.setattr(owner, name, lambda *args, **kwargs: calls.append(name) or original(*args, **kwargs))


@pytest.mark.parametrize("changes", [{}, {"trim_right_ratio": 0.5}, {"activation": "CELU"}],
                         ids=["causal", "looks-ahead", "unknown-activation"])
def test_long_audio_is_coded_in_chunks_with_the_same_result(monkeypatch, changes):
    """Causal models code long audio in chunks (`audiocodec.coding.chunked`); models it cannot run so (a decoder that
    looks ahead, an activation it does not know to be pointwise) code it whole."""
    from audiocodec.coding import chunked as chunked_module
    from audiocodec.coding import signal

    codec = tiny_codec(causal=True, **changes)
    wav = 0.1 * torch.randn(1, 8000 * 25 + 11)
    monkeypatch.setattr(signal, "CHUNK_SECONDS", 10_000.0)  # whole-signal path
    whole = compress(wav, 8000, model=codec)
    whole_audio, _ = decompress(whole, model=codec)
    monkeypatch.setattr(signal, "CHUNK_SECONDS", 2.0)  # 25 s > 2 x 2 s: in chunks
    calls = []
    for name in ("encode_in_chunks", "decode_in_chunks"):
        _spy(monkeypatch, chunked_module, name, calls)
    chunked = compress(wav, 8000, model=codec)
    assert chunked == whole
    chunked_audio, _ = decompress(chunked, model=codec)
    torch.testing.assert_close(chunked_audio, whole_audio, rtol=1e-4, atol=1e-5)
    assert calls == (["encode_in_chunks", "decode_in_chunks"] if not changes else [])


def test_a_bandwidth_applies_to_its_call_only():
    codec = tiny_codec()
    audio = np.random.default_rng(0).standard_normal(4000).astype(np.float32) * 0.1
    highest = codec.bandwidth
    full = compress(audio, 8000, model=codec)
    low = compress(audio, 8000, model=codec, bandwidth=min(codec.bandwidths))
    assert len(low) < len(full)
    # The model (perhaps the embedded one, which every call shares) keeps its own setting.
    assert codec.bandwidth == highest and compress(audio, 8000, model=codec) == full
    with pytest.raises(ValueError, match="not supported"):
        compress(audio, 8000, model=codec, bandwidth=5.5)
    assert codec.bandwidth == highest


@pytest.mark.parametrize("length", [4000, 8000 * 25])  # whole, and in chunks
def test_a_calls_bandwidth_never_changes_the_shared_model(length):
    """Threads sharing a model (the embedded one is shared by every call) must each get their own bandwidth: the
    call passes it down instead of setting it on the model, even for a moment."""
    from audiocodec.format import bitstream

    codec = tiny_codec(causal=True)
    audio = np.random.default_rng(0).standard_normal(length).astype(np.float32) * 0.1
    low, seen = min(codec.bandwidths), []
    encode = codec.quantizer.encode
    with mock.patch.object(codec.quantizer, "encode",
                           lambda x, n_q: seen.append((codec.bandwidth, n_q)) or encode(x, n_q)):
        header, _ = bitstream.unpack(compress(audio, 8000, model=codec, bandwidth=low))
    assert seen and all(s == (max(codec.bandwidths), codec.n_q_for_bandwidth(low)) for s in seen)
    assert header.bandwidth == low and header.n_q == codec.n_q_for_bandwidth(low)
    assert codec.encode(torch.from_numpy(audio)[None, None], bandwidth=low).codes.shape[1] == header.n_q


def test_a_model_directory_can_be_given_by_name(tmp_path):
    codec = tiny_codec()
    codec.save_pretrained(tmp_path / "model")
    audio = np.random.default_rng(0).standard_normal(4000).astype(np.float32) * 0.1
    data = compress(audio, 8000, model=tmp_path / "model")
    assert data == compress(audio, 8000, model=codec)
    torch.testing.assert_close(decompress(data, model=str(tmp_path / "model"))[0], decompress(data, model=codec)[0])
    with pytest.raises(TypeError, match="a Codec, a model directory or 'default'"):
        compress(audio, 8000, model=3)


def test_library_misuse_gets_errors_that_say_what_to_do():
    from audiocodec import Codec

    codec = tiny_codec()
    with pytest.raises(ValueError, match="NaN"):  # codes would come out anyway: all zeros
        codec.encode(torch.full((1, 1, 800), float("nan")))
    encoded = codec.encode(torch.zeros(1, 1, 800))
    with pytest.raises(TypeError, match="EncodedAudio"):
        codec.decode(encoded.codes)
    with pytest.raises(TypeError, match="model directory"):
        Codec.from_pretrained(None)


def test_audio_outside_the_loudness_range_is_coded_at_its_level_and_restored():
    from audiocodec.format import bitstream
    from audiocodec.io.loudness import level_gain

    codec = tiny_codec()
    t = torch.arange(8000) / 8000
    tone = 0.3 * torch.sin(2 * torch.pi * 440 * t)[None]  # -14.2 LUFS
    quiet = tone * 0.01  # -54.2 LUFS: far below the range
    gain = level_gain(quiet, 8000, (-26.0, -14.0))
    assert gain is not None and abs(20 * np.log10(gain) - 28.2) < 0.01  # brought up to -26 LUFS
    data = compress(quiet, 8000, model=codec)
    header, _ = bitstream.unpack(data)
    assert header.gain == gain
    with torch.no_grad():  # the codes are those of the raised audio, and decoding lowers it back
        expected = codec.decode(codec.encode((quiet * gain)[None]))[0] / gain
    torch.testing.assert_close(decompress(data, model=codec)[0], expected)
    # Inside the range, or too short to measure, the audio is coded as it is: the same bytes as without the range.
    inside = tone * 10 ** (-6 / 20)  # -20.2 LUFS
    assert level_gain(inside, 8000, (-26.0, -14.0)) is None
    assert compress(inside, 8000, model=codec) == compress(inside, 8000, model=codec, loudness_range=None)
    assert level_gain(quiet[:, :3000], 8000, (-26.0, -14.0)) is None
    # Raising stops at full scale: a quiet signal with one full-scale click is not raised at all.
    clicked = quiet.clone()
    clicked[0, 4000] = 1.0
    assert level_gain(clicked, 8000, (-26.0, -14.0)) is None


def test_loud_audio_is_brought_down_and_any_channel_count_is_measured():
    from audiocodec.format import bitstream
    from audiocodec.io.loudness import level_gain

    t = torch.arange(8000) / 8000
    tone = 0.3 * torch.sin(2 * torch.pi * 440 * t)[None]  # -14.2 LUFS
    # Beyond full scale too: torchaudio's clamping filters read a tone peaking at 30 as -1.4 LUFS, not +25.8.
    loud = tone * 100
    gain = level_gain(loud, 8000, (-26.0, -14.0))
    assert abs(20 * np.log10(gain) + 39.8) < 0.01  # +25.8 LUFS brought to -14
    codec = tiny_codec()
    assert bitstream.unpack(compress(loud, 8000, model=codec))[0].gain == gain
    six = tiny_codec(channels=6)  # more channels than torchaudio's loudness takes
    assert level_gain(tone.expand(6, -1) * 0.01, 8000, (-26.0, -14.0)) is not None
    assert decompress(compress(tone.expand(6, -1) * 0.01, 8000, model=six), model=six)[0].shape == (6, 8000)
