import shutil
import subprocess

import pytest
import soundfile as sf
import torch

from audiocodec.cli.common import SAMPLE
from audiocodec.evaluation import EvaluationError
from audiocodec.evaluation.evaluate import measure
from audiocodec.evaluation.opus import OpusRunner, check_tools, ogg_packet_sizes
from audiocodec.io.audio import read_audio

needs_opus = pytest.mark.skipif(
    shutil.which("opusenc") is None or shutil.which("opusdec") is None,
    reason="opus-tools (opusenc, opusdec) not installed: run recipes/install_system_deps.sh")


def _speech(seconds: float = 4.0):
    wav, rate = read_audio(SAMPLE)
    return torch.from_numpy(wav)[:, : int(seconds * rate)], rate


def test_bitrates_outside_what_opusenc_honours_are_not_applicable():
    opus = OpusRunner()
    assert opus.unavailable(6.0, 1) is None and opus.unavailable(256.0, 1) is None
    assert "6 to 256 kb/s" in opus.unavailable(3.0, 1)
    assert "12 to 512 kb/s for 2 channel(s)" in opus.unavailable(6.0, 2)


def test_missing_tools_give_an_error_naming_the_install_script(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(EvaluationError, match="opusenc and opusdec .*recipes/install_system_deps.sh"):
        check_tools()


@needs_opus
def test_round_trip_achieves_the_requested_bitrate_and_stays_time_aligned():
    wav, rate = _speech()
    result, aligned = measure(OpusRunner(), wav, rate, 24.0, speech=True)
    assert result.payload_kbps == pytest.approx(24.0, rel=0.2)
    assert result.payload_kbps < result.kbps < result.payload_kbps + 3  # Ogg pages and Opus headers on top
    assert result.trimmed_samples <= 2 and aligned.decoded.shape == wav.shape
    # A shift of even a millisecond would take SI-SDR below zero; PESQ near transparency at 24 kb/s.
    assert result.metrics["si_sdr"] > 5 and result.metrics["pesq_wb"] > 3.0 and result.metrics["stoi"] > 0.95


@needs_opus
def test_ogg_packets_are_counted_without_pages_and_start_with_the_opus_headers(tmp_path):
    wav, rate = _speech(1.0)
    sf.write(tmp_path / "x.wav", wav.T.numpy(), rate)
    subprocess.run(["opusenc", "--quiet", "--padding", "0", str(tmp_path / "x.wav"), str(tmp_path / "x.opus")],
                   check=True)
    data = (tmp_path / "x.opus").read_bytes()
    sizes = ogg_packet_sizes(data)
    assert sizes[0] == 19 and data[28:36] == b"OpusHead"  # OpusHead of a mono stream, first on the first page
    assert len(sizes) == 2 + 51  # OpusTags, then 1 s of 20 ms packets plus one for the encoder's look-ahead
    pages = data.count(b"OggS")
    assert sum(sizes) < len(data) - 27 * pages  # every page has a 27-byte header besides its lacing values
    with pytest.raises(ValueError, match="not an Ogg page"):
        ogg_packet_sizes(data[1:])


@needs_opus
def test_round_trip_decodes_at_48_khz_and_counts_the_payload_apart():
    wav, rate = _speech(1.0)
    decoded = OpusRunner().round_trip(wav, rate, 12.0)
    assert decoded.sample_rate == 48000 and decoded.audio.shape[0] == 1
    assert abs(decoded.audio.shape[-1] - 2 * wav.shape[-1]) <= 1  # 24 kHz in, 48 kHz out, same duration
    assert 0 < decoded.payload_bytes < decoded.file_bytes
