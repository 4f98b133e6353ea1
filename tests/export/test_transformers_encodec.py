"""transformers' EnCodec checkpoints: transformers is the oracle (random weights from `EncodecConfig`; no download)."""

import json
import subprocess
import sys

import pytest
import torch

from audiocodec import Codec
from audiocodec.errors import AudioCodecError

transformers = pytest.importorskip("transformers")

CONFIGS = {
    "24khz": {},
    "48khz": dict(sampling_rate=48000, audio_channels=2, normalize=True, chunk_length_s=1.0, overlap=0.01,
                  norm_type="time_group_norm", use_causal_conv=False, target_bandwidths=[3.0, 6.0, 12.0, 24.0]),
    # Small, for the command-line round trip: 3000 frames/s, 2 levels of 1024 codes at 60 kb/s.
    "tiny": dict(num_filters=4, hidden_size=16, upsampling_ratios=[4, 2], num_lstm_layers=1,
                 target_bandwidths=[30.0, 60.0]),
}


def random_transformers_encodec(variant: str, folder):
    """transformers' EnCodec with random weights and codebooks, written by its own `save_pretrained`."""
    torch.manual_seed(5)
    model = transformers.EncodecModel(transformers.EncodecConfig(**CONFIGS[variant])).eval()
    with torch.no_grad():
        for layer in model.quantizer.layers:
            layer.codebook.embed.normal_()
    model.save_pretrained(folder)
    return model


@pytest.fixture(scope="module", params=["24khz", "48khz"])
def pair(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param)
    return random_transformers_encodec(request.param, folder), folder


def test_codes_and_audio_equal_transformers_at_every_bandwidth(pair):
    reference, folder = pair
    codec = Codec.from_pretrained(folder)
    config = reference.config
    torch.manual_seed(6)
    # 48 kHz: over one second, so that overlapping normalised segments are joined.
    wav = 0.1 * torch.randn(2, config.audio_channels, int(config.sampling_rate * (1.3 if config.normalize else 0.4)))
    for bandwidth in config.target_bandwidths:
        with torch.no_grad():
            frames, scales, pad = reference.encode(wav, bandwidth=bandwidth, return_dict=False)
            expected_audio = reference.decode(frames, scales, last_frame_pad_length=pad, return_dict=False)[0]
            encoded = codec.encode(wav, bandwidth=bandwidth)
            audio = codec.decode(encoded)
        expected = torch.cat(list(frames), dim=-1)
        expected = expected[..., : expected.shape[-1] - pad]
        assert torch.equal(encoded.codes, expected), bandwidth
        if config.normalize:
            assert torch.equal(encoded.scales, torch.cat(scales, dim=1)), bandwidth
        assert (audio - expected_audio[..., : wav.shape[-1]]).abs().max() <= 1e-4, bandwidth


def test_export_converts_to_a_model_directory(tmp_path):
    folder = tmp_path / "transformers"
    reference = random_transformers_encodec("tiny", folder)
    done = subprocess.run([sys.executable, "-m", "audiocodec", "export", str(folder), str(tmp_path / "out")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    converted, original = Codec.from_pretrained(tmp_path / "out"), Codec.from_pretrained(folder)
    wav = 0.1 * torch.randn(1, reference.config.audio_channels, 4000)
    assert torch.equal(converted.encode(wav).codes, original.encode(wav).codes)
    assert json.loads((tmp_path / "out" / "config.json").read_text())["config"]["sample_rate"] == \
        reference.config.sampling_rate
    pytest.importorskip("onnxruntime")
    from audiocodec.export.onnx import export_onnx
    from audiocodec.export.runtime import OnnxCodec

    export_onnx(original, tmp_path / "onnx")  # what `export FOLDER OUT --onnx` writes
    with torch.no_grad():
        frames, _, _ = reference.encode(wav, bandwidth=60.0, return_dict=False)
    codes, _ = OnnxCodec(tmp_path / "onnx").encode(wav.numpy(), 60.0)
    assert (codes == frames[0].numpy()).mean() >= 0.99  # near-ties may flip (tests/export/test_onnx.py)


def test_other_architecture_is_one_line(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "mimi"}))
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(AudioCodecError, match="a transformers model of type 'mimi', not EnCodec"):
        Codec.from_pretrained(tmp_path)
    done = subprocess.run([sys.executable, "-m", "audiocodec", "export", str(tmp_path), str(tmp_path / "out"),
                           "--onnx"], capture_output=True, text=True)
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "not EnCodec" in done.stderr
