"""ONNX export checked in onnxruntime on the CPU against the PyTorch model it came from."""

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
import soundfile
import torch

from audiocodec import Codec
from audiocodec.errors import OutputExistsError
from tiny_models import tiny_codec

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from audiocodec.export.check import compare  # noqa: E402
from audiocodec.export.onnx import ExportError, export_onnx  # noqa: E402
from audiocodec.export.runtime import OnnxCodec  # noqa: E402

SAMPLE = "audiocodec/assets/sample.flac"
#: Largest relative distance gap a differing code may show: a near-tie, which float rounding may flip.
NEAR_TIE = 1e-4


def exported(codec, tmp_path_factory, name="export") -> OnnxCodec:
    folder = tmp_path_factory.mktemp(name)
    export_onnx(codec, folder)
    return OnnxCodec(folder, threads=1)


def check_agreement(codec, runtime, wav, min_equal=0.99):
    """Codes equal to PyTorch's but for near-ties, audio of the same codes within 1e-4, at every bandwidth."""
    for row in compare(codec, runtime, wav):
        assert row.worst_gap <= NEAR_TIE, row
        assert row.equal_share >= min_equal, row
        assert row.audio_max_diff <= 1e-4, row


def synthetic(channels, sample_rate, seconds, batch=2):
    """Noise, a chirp and silence with a click: signals unlike the training data, and exact zeros."""
    t = torch.arange(int(seconds * sample_rate)) / sample_rate
    chirp = 0.5 * torch.sin(2 * torch.pi * (100 + 2000 * t) * t)
    noise = 0.1 * torch.randn(channels, t.numel(), generator=torch.Generator().manual_seed(3))
    silence = torch.zeros_like(chirp)
    silence[len(t) // 2] = 0.9
    signals = [noise, chirp.expand(channels, -1), silence.expand(channels, -1)]
    return torch.stack(signals[:batch] if batch <= 3 else signals)


@pytest.mark.parametrize("changes", [
    {},
    {"causal": False},
    {"causal": False, "norm": "time_group_norm", "normalize": True, "segment": 0.3, "channels": 2},
    {"pad_mode": "constant"},
    {"pad_mode": "replicate", "causal": False},
], ids=["causal", "non-causal", "segments-48k-layout", "constant-pad", "replicate-pad"])
def test_tiny_models_match_pytorch_at_any_length(changes, tmp_path_factory):
    codec = tiny_codec(**changes)
    runtime = exported(codec, tmp_path_factory)
    for length in (1, 5, 37, 801, 2500):  # shorter than every padding, and several segments
        wav = 0.1 * torch.randn(2, codec.channels, length)
        check_agreement(codec, runtime, wav, min_equal=1.0)


def stream_both(codec, runtime, wav, codes, frames):
    """Codes and audio of PyTorch's streaming encoder/decoder and of the ONNX step graphs, pushed the same chunks
    (the first step's minimum, then one frame at a time), per push."""
    hop = codec.hop_length
    encoder, steps = codec.streaming_encoder(), runtime.stream_encoder()
    decoder, decoder_steps = codec.streaming_decoder(), runtime.stream_decoder()
    pieces = []
    for first, unit_stream in ((steps.first_frames, "encoder"), (decoder_steps.first_frames, "decoder")):
        bounds = [0, first, *range(first + 1, frames + 1)]
        for a, b in zip(bounds, bounds[1:]):
            if unit_stream == "encoder":
                chunk = wav[..., a * hop : b * hop]
                ours, theirs = encoder.push(chunk).numpy(), steps.push(chunk.numpy())[:, : encoder.n_q]
            else:
                chunk = codes[..., a:b]
                ours, theirs = decoder.push(chunk).numpy(), decoder_steps.push(chunk.numpy())
            pieces.append((unit_stream, ours, theirs))
    assert encoder.flush().shape[-1] == 0 and decoder.flush().shape[-1] == 0  # whole frames: nothing held back
    return pieces


def check_streaming(codec, runtime, frames=100):
    """Over `frames` frames: the step graphs give each push what PyTorch's streaming gives it, and together what
    the whole-signal graphs give."""
    torch.manual_seed(4)
    wav = 0.1 * torch.randn(1, codec.channels, frames * codec.hop_length)
    whole_codes = codec.encode(wav).codes
    pieces = stream_both(codec, runtime, wav, whole_codes, frames)
    for kind, ours, theirs in pieces:
        assert ours.shape == theirs.shape, kind
        if kind == "encoder":
            assert np.array_equal(ours, theirs)
        else:
            assert np.abs(ours - theirs).max() <= 1e-4
    onnx_codes = np.concatenate([t for kind, _, t in pieces if kind == "encoder"], axis=-1)
    assert np.array_equal(onnx_codes, whole_codes.numpy())
    onnx_audio = np.concatenate([t for kind, _, t in pieces if kind == "decoder"], axis=-1)
    whole_audio = runtime.decode(whole_codes.numpy(), None, wav.shape[-1])
    assert np.abs(onnx_audio - whole_audio).max() <= 1e-4


def test_tiny_causal_step_graphs_equal_pytorch_streaming(tmp_path_factory):
    codec = tiny_codec()
    check_streaming(codec, exported(codec, tmp_path_factory))


def test_default_model(tmp_path_factory):
    """The embedded model: the bundled sample and synthetic signals, every bandwidth; streaming over 100 frames."""
    codec = Codec.from_pretrained("default")
    runtime = exported(codec, tmp_path_factory)
    audio, rate = soundfile.read(SAMPLE, dtype="float32", always_2d=True)
    assert rate == codec.sample_rate
    sample = torch.from_numpy(audio.T[None, :, : 3 * rate].copy())
    check_agreement(codec, runtime, sample)
    check_agreement(codec, runtime, synthetic(1, rate, 1.0, batch=3))
    check_streaming(codec, runtime)


def random_encodec(variant: str):
    """EnCodec's model with random weights and codebooks, and the same loaded into audiocodec (no download)."""
    from encodec import EncodecModel

    torch.manual_seed(1)
    constructor = {"24khz": EncodecModel.encodec_model_24khz, "48khz": EncodecModel.encodec_model_48khz}[variant]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = constructor(pretrained=False).eval()
    for layer in model.quantizer.vq.layers:
        layer._codebook.embed.data.normal_()
        layer._codebook.inited.fill_(1)
    return model


@pytest.mark.parametrize("variant", ["24khz", "48khz"])
def test_encodec_layout(variant, tmp_path_factory, tmp_path):
    pytest.importorskip("encodec")
    reference = random_encodec(variant)
    path = tmp_path / "encodec.th"
    torch.save(reference.state_dict(), path)
    codec = Codec.from_encodec(path, variant)
    runtime = exported(codec, tmp_path_factory)
    rate, channels = codec.sample_rate, codec.channels
    # 48 kHz: over one second, so that two overlapping normalised segments are joined.
    check_agreement(codec, runtime, synthetic(channels, rate, 1.3 if variant == "48khz" else 0.5))
    if variant == "24khz":
        check_streaming(codec, runtime, frames=100)
    else:
        manifest = json.loads((runtime.folder / "onnx.json").read_text())
        assert manifest["streaming"] is None and "not causal" in manifest["streaming_unavailable"]


def test_refusals(tmp_path):
    codec = tiny_codec()
    export_onnx(codec, tmp_path / "out")
    with pytest.raises(OutputExistsError, match="already holds encoder.onnx"):
        export_onnx(codec, tmp_path / "out")
    export_onnx(codec, tmp_path / "out", force=True)
    odd = tiny_codec()
    odd.encoder.model[-2] = torch.nn.GELU()  # no config builds one yet, but a layer ONNX lacks must be named
    with pytest.raises(ExportError, match="cannot export layer GELU"):
        export_onnx(odd, tmp_path / "gelu")
    steps = OnnxCodec(tmp_path / "out").stream_encoder()
    with pytest.raises(ValueError, match="first step needs at least"):
        steps.push(np.zeros((1, 1, codec.hop_length), dtype=np.float32))


def test_cli(tmp_path):
    codec = tiny_codec()
    codec.save_pretrained(tmp_path / "model")
    command = [sys.executable, "-m", "audiocodec", "export", str(tmp_path / "model"), str(tmp_path / "out"), "--onnx"]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "encoder.onnx" in done.stdout
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"encoder.onnx", "decoder.onnx", "encoder_step.onnx",
                                                            "decoder_step.onnx", "onnx.json",
                                                            "code_frequencies.npy"}
    again = subprocess.run(command, capture_output=True, text=True)
    assert again.returncode == 1 and again.stderr.count("\n") == 1 and "--force" in again.stderr
    mixed = subprocess.run(command + ["--compact", "--force"], capture_output=True, text=True)
    assert mixed.returncode == 1 and "--onnx writes float32 graphs" in mixed.stderr
