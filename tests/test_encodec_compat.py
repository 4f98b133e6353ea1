"""Loading EnCodec checkpoints: the `encodec` package is the oracle (random weights; none can be downloaded)."""

import warnings

import pytest
import torch
from encodec import EncodecModel

from audiocodec import Codec
from audiocodec.errors import ModelMismatchError

warnings.filterwarnings("ignore", category=FutureWarning)
CONSTRUCTORS = {"24khz": EncodecModel.encodec_model_24khz, "48khz": EncodecModel.encodec_model_48khz}


def random_encodec(variant: str) -> EncodecModel:
    """EnCodec's model of `variant` with random weights and codebooks (seeded)."""
    torch.manual_seed(1)
    model = CONSTRUCTORS[variant](pretrained=False).eval()
    for layer in model.quantizer.vq.layers:
        layer._codebook.embed.data.normal_()
        layer._codebook.inited.fill_(1)
    return model


def encodec_outputs(reference, wav: torch.Tensor, bandwidths) -> dict:
    """EnCodec's codes, scales and decoded audio at each bandwidth: computed once per model, for every test."""
    outputs = {}
    for bandwidth in bandwidths:
        reference.set_target_bandwidth(bandwidth)
        with torch.no_grad():
            frames = reference.encode(wav)
            audio = reference.decode(frames)[..., : wav.shape[-1]]
        codes = torch.cat([codes for codes, _ in frames], dim=-1)
        scales = torch.cat([scale for _, scale in frames], dim=1) if reference.normalize else None
        outputs[bandwidth] = (codes, scales, audio)
    return outputs


def assert_matches_encodec(codec, wav: torch.Tensor, expected: dict) -> None:
    """At each bandwidth: codes (and scales) equal to EnCodec's, decoded audio within 1e-4 of EnCodec's."""
    for bandwidth, (codes, scales, expected_audio) in expected.items():
        codec.set_target_bandwidth(bandwidth)
        with torch.no_grad():
            encoded = codec.encode(wav)
            audio = codec.decode(encoded)
        assert torch.equal(encoded.codes, codes), bandwidth
        if scales is not None:
            assert torch.equal(encoded.scales, scales)
        assert (audio - expected_audio).abs().max() <= 1e-4, bandwidth


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """EnCodec models with random weights and codebooks, saved as EnCodec publishes them (a state dict)."""
    out = {}
    for variant in CONSTRUCTORS:
        model = random_encodec(variant)
        path = tmp_path_factory.mktemp(variant) / f"encodec_{variant}.th"
        torch.save(model.state_dict(), path)
        out[variant] = (model, path)
    return out


@pytest.fixture(scope="module")
def encodec_reference(checkpoints):
    """Per variant: a test signal over one second (at 48 kHz, so that overlapping normalised segments are exercised
    too) and EnCodec's outputs for it at every bandwidth."""
    out = {}
    for variant, (reference, _) in checkpoints.items():
        torch.manual_seed(2)
        wav = 0.1 * torch.randn(1, reference.channels, int(reference.sample_rate * 1.3) + 17)
        out[variant] = wav, encodec_outputs(reference, wav, reference.target_bandwidths)
    return out


@pytest.mark.parametrize("prepared", [False, True], ids=["as-loaded", "prepared"])
@pytest.mark.parametrize("variant", ["24khz", "48khz"])
def test_codes_equal_and_audio_matches_at_every_bandwidth(checkpoints, encodec_reference, variant, prepared):
    _, path = checkpoints[variant]
    codec = Codec.from_encodec(path, variant)
    if prepared:  # weight norm folded; on the CPU, time-major tiles and the exp-based ELU
        codec.prepare_for_inference()
    wav, expected = encodec_reference[variant]
    assert_matches_encodec(codec, wav, expected)


def test_other_variant_is_refused_with_the_keys(checkpoints):
    _, path_48 = checkpoints["48khz"]
    with pytest.raises(ModelMismatchError, match="not an EnCodec 24khz checkpoint: .*unexpected keys: .*norm"):
        Codec.from_encodec(path_48, "24khz")


def test_missing_keys_are_listed(checkpoints, tmp_path):
    reference, _ = checkpoints["24khz"]
    state = reference.state_dict()
    del state["decoder.model.0.conv.conv.bias"]
    path = tmp_path / "broken.th"
    torch.save(state, path)
    with pytest.raises(ModelMismatchError, match=r"missing keys: decoder\.model\.0\.conv\.bias"):
        Codec.from_encodec(path, "24khz")


@pytest.mark.parametrize("variant", ["24khz", "48khz"])
def test_encodec_weights_compress_from_the_command_line_with_encodecs_codes(checkpoints, variant, tmp_path):
    """`audiocodec export` turns EnCodec's weights file into a model directory; files compressed with it hold
    EnCodec's own codes (and segment scales), and decompress."""
    import numpy as np
    import soundfile as sf

    from audiocodec import cli
    from audiocodec.format.header import read_codes

    reference, path = checkpoints[variant]
    model_dir = tmp_path / "model"
    assert cli.main(["export", str(path), str(model_dir)]) == 0
    rate, channels = reference.sample_rate, reference.channels
    time = np.arange(int(1.3 * rate)) / rate
    tone = 0.1 * np.sin(2 * np.pi * 440 * time) + 0.02 * np.random.default_rng(3).standard_normal(time.shape[0])
    wav = np.stack([tone] * channels, axis=1).astype(np.float32)  # about -22 LUFS: coded at its own level
    sf.write(tmp_path / "in.wav", wav, rate, subtype="FLOAT")
    assert cli.main(["compress", str(tmp_path / "in.wav"), str(tmp_path / "in.ac"), "-b", "6",
                     "--model", str(model_dir)]) == 0
    data = (tmp_path / "in.ac").read_bytes()
    codec = Codec.from_pretrained(model_dir)
    header, codes = read_codes(data, codec)
    assert header.gain is None and header.model_id == codec.model_id()
    reference.set_target_bandwidth(6.0)
    with torch.no_grad():
        frames = reference.encode(torch.from_numpy(wav.T.copy())[None])
    assert np.array_equal(codes, torch.cat([c for c, _ in frames], dim=-1)[0].numpy())
    if reference.normalize:
        expected = torch.cat([s for _, s in frames], dim=1)[0]
        assert np.allclose(header.scales, expected.numpy(), rtol=1e-6)
    assert cli.main(["decompress", str(tmp_path / "in.ac"), str(tmp_path / "out.wav"), "--model",
                     str(model_dir)]) == 0
    assert sf.info(tmp_path / "out.wav").frames == wav.shape[0]
