import json

import pytest
import torch

from audiocodec import Codec
from audiocodec.errors import AudioCodecError, ModelMismatchError
from audiocodec.modules import PaddedConv1d, PaddedConvTranspose1d
from tiny_models import tiny_codec


def test_bandwidth_maps_to_codebooks_and_frame_rate():
    codec = tiny_codec()
    assert codec.frame_rate == 1000 and codec.hop_length == 8
    assert codec.n_q_for_bandwidth(4.0) == 1 and codec.n_q_for_bandwidth(8.0) == 2
    codec.set_target_bandwidth(8.0)
    encoded = codec.encode(torch.randn(1, 1, 801))
    assert encoded.codes.shape == (1, 2, 101) and encoded.codes.dtype == torch.long
    with pytest.raises(ValueError, match="choose one of 4, 8"):
        codec.set_target_bandwidth(6.0)


def test_a_bandwidth_that_is_a_whole_number_of_codebooks_gets_them_all():
    """At 16 kHz with a hop of 480 (33.3 frames/s, 333.3 b/s per codebook of 1024) 3 kb/s is exactly 9 codebooks
    and 6 kb/s 18; computed through the rounded frame rate they came to 8.999... and 17.999... and lost one each."""
    from audiocodec.model import CodecConfig
    from audiocodec.quantization import QuantizerConfig

    codec = Codec(CodecConfig(sample_rate=16000, ratios=(8, 5, 4, 3), n_filters=4, target_bandwidths=(3.0, 6.0),
                              quantizer=QuantizerConfig(n_q=18, bins=1024)))
    assert [codec.n_q_for_bandwidth(b) for b in (3.0, 6.0, 2.99, 0.1)] == [9, 18, 8, 1]
    encodec_24khz = Codec(CodecConfig())  # EnCodec's rule, exactly: 75 frames/s, 10 bits a code
    assert [encodec_24khz.n_q_for_bandwidth(b) for b in (1.5, 3.0, 6.0, 12.0, 24.0)] == [2, 4, 8, 16, 32]


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("length", [1, 37, 800, 2401])
def test_decode_returns_original_length_and_matches_forward(channels, length):
    codec = tiny_codec(channels=channels)
    wav = torch.randn(2, channels, length)
    with torch.no_grad():
        encoded = codec.encode(wav)
        decoded = codec.decode(encoded)
        forward = codec(wav).audio
    assert decoded.shape == wav.shape
    torch.testing.assert_close(decoded, forward)


def test_segments_are_normalised_and_cross_faded():
    codec = tiny_codec(channels=2, normalize=True, segment=0.1, overlap=0.1, causal=False, norm="time_group_norm")
    wav = torch.randn(1, 2, 2000)
    wav[..., 1000:] *= 10
    with torch.no_grad():
        encoded = codec.encode(wav)
        decoded = codec.decode(encoded)
    # 800-sample segments every 720 samples over 2000 samples: offsets 0, 720, 1440.
    assert encoded.scales.shape == (1, 3)
    assert encoded.codes.shape[-1] == 100 + 100 + 70
    assert encoded.scales[0, 2] > 5 * encoded.scales[0, 0]
    assert decoded.shape == wav.shape
    # The louder half of the input must come out louder: the scales are applied on decode.
    assert decoded[..., 1500:].abs().mean() > 3 * decoded[..., :500].abs().mean()


def test_wrong_input_names_what_was_expected():
    codec = tiny_codec()
    with pytest.raises(ValueError, match=r"\[batch, channels, time\]"):
        codec.encode(torch.randn(1, 100))
    with pytest.raises(ValueError, match="expects 1 channel"):
        codec.encode(torch.randn(1, 2, 100))


def test_save_and_load_round_trip(tmp_path):
    codec = tiny_codec()
    codec.code_frequencies.fill_(3.0)
    codec.save_pretrained(tmp_path / "m")
    assert not list((tmp_path / "m").glob("*.pt")) and (tmp_path / "m" / "model.safetensors").is_file()
    loaded = Codec.from_pretrained(tmp_path / "m")
    assert loaded.model_id() == codec.model_id()
    assert torch.equal(loaded.code_frequencies, codec.code_frequencies)
    wav = torch.randn(1, 1, 500)
    with torch.no_grad():
        assert torch.equal(loaded.encode(wav).codes, codec.encode(wav).codes)


def test_compact_save_is_smaller_decodes_alike_and_can_train_on(tmp_path):
    codec = tiny_codec()
    codec.code_frequencies.fill_(3.0)
    codec.quantizer.levels[0].cluster_usage.fill_(2.5)
    codec.save_pretrained(tmp_path / "full")
    codec.save_pretrained(tmp_path / "compact", compact=True)
    size = {name: (tmp_path / name / "model.safetensors").stat().st_size for name in ("full", "compact")}
    assert size["compact"] < 0.6 * size["full"]  # float16, without the ring and the sums
    loaded = Codec.from_pretrained(tmp_path / "compact")
    meta = json.loads((tmp_path / "compact" / "config.json").read_text())
    assert meta["compact"] is True and meta["model_id"] == loaded.model_id() != codec.model_id()
    assert all(v.dtype == torch.float32 for v in loaded.state_dict().values() if v.is_floating_point())
    assert torch.equal(loaded.code_frequencies, codec.code_frequencies)  # counts are kept exactly
    assert torch.equal(loaded.quantizer.levels[0].cluster_usage, codec.quantizer.levels[0].cluster_usage)
    wav = 0.5 * torch.sin(torch.arange(2000) / 5.0).view(1, 1, -1)
    with torch.no_grad():
        codes = codec.encode(wav)
        reference, decoded = codec.decode(codes), loaded.decode(codes)
    assert (decoded - reference).abs().max() < 1e-2 * reference.abs().max()  # float16 weights, same sound
    # The EMA state is rebuilt consistently with the loaded codebooks, so training can go on from them.
    for level in loaded.quantizer.levels:
        assert torch.allclose(level.embedding_sum / level._smoothed_usage()[:, None], level.embedding, atol=1e-6)
        assert not level.window_usage.any()
    assert int(loaded.quantizer.recent_count) == 0
    loaded.train()
    assert torch.isfinite(loaded(wav).audio).all()


def test_int8_save_halves_the_compact_size_and_decodes_alike(tmp_path):
    from safetensors.torch import load_file, save_file

    codec = tiny_codec(n_filters=16)  # matrices large enough to be stored in 8 bits
    codec.code_frequencies.fill_(3.0)
    for name in ("compact", "int8"):
        codec.save_pretrained(tmp_path / name, compact=True, int8=name == "int8")
    size = {name: (tmp_path / name / "model.safetensors").stat().st_size for name in ("compact", "int8")}
    assert size["int8"] < 0.65 * size["compact"]
    meta = {name: json.loads((tmp_path / name / "config.json").read_text()) for name in ("compact", "int8")}
    assert (meta["compact"]["format_version"], meta["int8"]["format_version"]) == (1, 2)  # older readers: version 1
    loaded = Codec.from_pretrained(tmp_path / "int8")
    assert meta["int8"]["model_id"] == loaded.model_id() != meta["compact"]["model_id"]
    assert all(v.dtype == torch.float32 for v in loaded.state_dict().values() if v.is_floating_point())
    assert torch.equal(loaded.code_frequencies, codec.code_frequencies)
    stored = load_file(tmp_path / "int8" / "model.safetensors")
    lstm = "encoder.model.7.lstm.weight_hh_l0"
    assert stored[lstm].dtype == torch.int8 and stored[lstm].abs().amax(1).eq(127).all()
    assert not any(t.dtype == torch.int8 for k, t in stored.items() if k.startswith("quantizer."))
    for name, value in codec.state_dict().items():
        if name in stored and stored[name].dtype == torch.int8:  # within half a step (and float16's rounding)
            step = stored[name + ".int8_scale"].view(-1, *[1] * (value.dim() - 1))
            assert ((loaded.state_dict()[name] - value).abs() <= step / 2 + value.abs() * 2**-10).all(), name
    wav = 0.5 * torch.sin(torch.arange(2000) / 5.0).view(1, 1, -1)
    with torch.no_grad():
        codes = codec.encode(wav)
        reference, decoded = codec.decode(codes), loaded.decode(codes)
    assert (decoded - reference).abs().max() < 3e-2 * reference.abs().max()
    again = loaded.stored_state(compact=True, int8=True)  # written again: the same integers, scales to a last bit
    assert torch.equal(again[lstm], stored[lstm])
    assert torch.allclose(again[lstm + ".int8_scale"], stored[lstm + ".int8_scale"], rtol=1e-6, atol=0)
    with pytest.raises(ValueError, match="compact=True"):
        codec.save_pretrained(tmp_path / "x", int8=True)

    weights = tmp_path / "int8" / "model.safetensors"
    for damage, message in ((lambda s: s.pop(lstm + ".int8_scale"), "int8 without scales"),
                            (lambda s: s.pop(lstm), "does not scale an int8 tensor"),
                            (lambda s: s[lstm + ".int8_scale"].fill_(float("inf")), "NaN or infinite"),
                            (lambda s: s[lstm].fill_(-128), "never writes"),
                            (lambda s: s[lstm + ".int8_scale"].neg_(), "never writes"),
                            (lambda s: s.update({lstm + ".int8_scale": s[lstm + ".int8_scale"].half()}),
                             "does not scale")):
        state = dict(stored)
        state = {k: v.clone() for k, v in state.items()}
        damage(state)
        save_file(state, weights)
        with pytest.raises(ModelMismatchError, match=message):
            Codec.from_pretrained(tmp_path / "int8")
    save_file(stored, weights)
    del meta["int8"]["model_id"]  # the id is what catches damage that 8-bit values can hide
    (tmp_path / "int8" / "config.json").write_text(json.dumps(meta["int8"]))
    with pytest.raises(AudioCodecError, match="no model_id"):
        Codec.from_pretrained(tmp_path / "int8")
    meta["compact"]["format_version"] = True  # == 1 in Python, but not a version
    (tmp_path / "compact" / "config.json").write_text(json.dumps(meta["compact"]))
    with pytest.raises(AudioCodecError, match="unsupported model format version True"):
        Codec.from_pretrained(tmp_path / "compact")


def test_the_stored_state_is_a_copy():
    codec = tiny_codec()
    before = codec.model_id()
    for compact in (False, True):
        for tensor in codec.stored_state(compact=compact).values():
            tensor.zero_()
    assert codec.model_id() == before


def test_model_id_changes_with_any_weight():
    codec = tiny_codec()
    before = codec.model_id()
    with torch.no_grad():
        codec.decoder.model[-1].conv.bias[0] += 1e-3
    assert codec.model_id() != before


def test_model_id_ignores_training_only_quantizer_options_but_not_the_layout():
    codec = tiny_codec()
    retrained = Codec(codec.config.replace(quantizer=codec.config.quantizer.replace(expire_every=7, seed=3)))
    retrained.load_state_dict(codec.state_dict())
    assert retrained.model_id() == codec.model_id()  # files compressed before still decode
    other = Codec(codec.config.replace(trim_right_ratio=0.5))
    other.load_state_dict(codec.state_dict())
    assert other.model_id() != codec.model_id()


def test_loading_mismatched_weights_lists_the_keys(tmp_path):
    tiny_codec().save_pretrained(tmp_path / "a")
    meta = json.loads((tmp_path / "a" / "config.json").read_text())
    meta["config"]["lstm"] = 0
    (tmp_path / "a" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ModelMismatchError, match="unexpected keys: .*lstm"):
        Codec.from_pretrained(tmp_path / "a")
    with pytest.raises(AudioCodecError, match="not a model directory"):
        Codec.from_pretrained(tmp_path / "nothing")


@pytest.mark.parametrize("compact", [False, True])
def test_a_changed_weight_or_a_nan_in_a_model_folder_is_refused(tmp_path, compact):
    """Loaded, a changed byte gives files under another id, and a NaN decodes to full-scale noise, silently."""
    from safetensors.torch import load_file, save_file

    tiny_codec().save_pretrained(tmp_path / "model", compact=compact)
    assert Codec.from_pretrained(tmp_path / "model").model_id() == json.loads(
        (tmp_path / "model" / "config.json").read_text())["model_id"]
    weights = tmp_path / "model" / "model.safetensors"
    state = load_file(weights)
    state["decoder.model.0.conv.bias"][0] += 0.5
    save_file(state, weights)
    with pytest.raises(AudioCodecError, match="damaged model: its weights are not those of the model [0-9a-f]{16}"):
        Codec.from_pretrained(tmp_path / "model")
    state["decoder.model.0.conv.bias"][0] = float("nan")
    save_file(state, weights)
    with pytest.raises(ModelMismatchError, match=r"damaged weights: decoder.model.0.conv.bias hold NaN"):
        Codec.from_pretrained(tmp_path / "model")


def test_lecun_init_scales_every_conv_weight_by_sqrt3_and_keeps_the_signal():
    import math

    from audiocodec.errors import ConfigError
    from tiny_models import tiny_config

    torch.manual_seed(0)
    default = Codec(tiny_config())
    torch.manual_seed(0)
    lecun = Codec(tiny_config(conv_init="lecun"))
    convs = [name for name, module in default.named_modules() if isinstance(module, (torch.nn.Conv1d,
                                                                                      torch.nn.ConvTranspose1d))]
    assert convs
    modules = dict(lecun.named_modules())
    for name in convs:
        expected = dict(default.named_modules())[name].weight * math.sqrt(3)
        assert torch.allclose(modules[name].weight, expected, rtol=1e-5), name
    # The point of it: the untrained encoder passes the signal's time variation on instead of attenuating it.
    wav = 0.3 * torch.sin(torch.arange(4000) / 3.0).view(1, 1, -1)
    with torch.no_grad():
        variation = {name: model.encoder(wav).std(-1).mean().item() for name, model in
                     (("pytorch", default), ("lecun", lecun))}
    assert variation["lecun"] > 3 * variation["pytorch"]
    with pytest.raises(ConfigError, match="conv_init"):
        tiny_config(conv_init="xavier")


@pytest.mark.parametrize("field, value, message", [
    ("pad_mode", "circular", "pad_mode must be one of reflect, replicate, constant, got 'circular'"),
    ("norm", "batch_norm", "norm must be one of none, weight_norm, time_group_norm"),
    ("activation", "Swish", "unknown activation 'Swish'"),
    ("target_bandwidths", (48.0,), "48.0 kb/s needs"),
])
def test_layouts_the_layers_lack_are_config_errors(field, value, message):
    """A recipe or config.json asking for them gets the command line's one-line error, not an internal one."""
    from audiocodec.errors import ConfigError
    from tiny_models import tiny_config

    with pytest.raises(ConfigError, match=message):
        Codec(tiny_config(**{field: value}))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_networks_keep_float32_codes_and_audio(dtype):
    from audiocodec.modules import LayerwiseLSTM

    reference = tiny_codec(causal=True, lstm=2).prepare_for_inference()
    half = tiny_codec(causal=True, lstm=2).prepare_for_inference(dtype=dtype)
    assert half.network_dtype == dtype and half.quantizer.levels[0].embedding.dtype == torch.float32
    # float16 runs the 2-layer LSTMs one layer at a time (cuDNN's persistent kernel); the streaming below uses them
    layerwise = [isinstance(block.lstm, LayerwiseLSTM) for block in (half.encoder.model[-3], half.decoder.model[1])]
    assert layerwise == [dtype == torch.float16] * 2
    assert half.encoder.model[0].channels_last and half.decoder.model[-1].channels_last
    assert reference.encoder.model[0].channels_last  # on the CPU, float32 runs time-major too (it is faster)
    assert half.model_id() == reference.model_id()  # the same model: its files decode with the float32 one
    wav = 0.3 * torch.randn(2, 1, 4000)
    with torch.inference_mode():
        expected, encoded = reference.encode(wav), half.encode(wav)
        audio = half.decode(encoded)
        streamed = half.streaming_encoder()
        codes = torch.cat([streamed.push(wav[..., :1500]), streamed.push(wav[..., 1500:]), streamed.flush()], -1)
        decoder = half.streaming_decoder()
        streamed_audio = torch.cat([decoder.push(encoded.codes), decoder.flush()], dim=-1)
    assert encoded.codes.dtype == torch.long and audio.dtype == streamed_audio.dtype == torch.float32
    # bfloat16 keeps 8 bits of mantissa (float16 11): most codes survive, and the audio stays close.
    assert (encoded.codes == expected.codes).float().mean() > 0.95
    assert (codes == encoded.codes).float().mean() > 0.95
    error = (audio - reference.decode(encoded)).pow(2).mean() / reference.decode(encoded).pow(2).mean()
    assert error < 1e-3
    with pytest.raises(ValueError, match="dtype must be"):
        tiny_codec().prepare_for_inference(dtype=torch.int8)


def test_on_the_cpu_float32_runs_time_major_unless_the_model_has_group_norm():
    """Time-major is faster on the CPU, but group norm would copy every activation back and forth."""
    wav = 0.3 * torch.randn(2, 1, 4000)
    for norm, time_major in (("weight_norm", True), ("time_group_norm", False)):
        plain = tiny_codec(norm=norm, causal=False)
        prepared = tiny_codec(norm=norm, causal=False).prepare_for_inference()
        assert all(layer.channels_last == time_major for layer in prepared.modules()
                   if isinstance(layer, (PaddedConv1d, PaddedConvTranspose1d)))
        with torch.inference_mode():
            expected, encoded = plain.encode(wav), prepared.encode(wav)
            assert torch.equal(encoded.codes, expected.codes)
            torch.testing.assert_close(prepared.decode(encoded), plain.decode(expected), rtol=0, atol=1e-5)


def test_preparing_for_float32_after_half_precision_restores_float32_computation():
    reference = tiny_codec(causal=True, lstm=2).prepare_for_inference()
    for network in (reference.encoder, reference.decoder):  # the same weights, rounded to float16 and back
        network.half().float()
    codec = tiny_codec(causal=True, lstm=2).prepare_for_inference(dtype=torch.float16)
    codec.prepare_for_inference(dtype=torch.float32)
    assert isinstance(codec.encoder.model[-3].lstm, torch.nn.LSTM)
    wav = 0.3 * torch.randn(2, 1, 4000)
    with torch.inference_mode():
        expected, encoded = reference.encode(wav), codec.encode(wav)
        assert torch.equal(encoded.codes, expected.codes)
        assert torch.equal(codec.decode(encoded), reference.decode(expected))


def test_a_bad_dtype_leaves_the_model_untouched(tmp_path):
    codec = tiny_codec()
    with pytest.raises(ValueError, match="dtype must be"):
        codec.prepare_for_inference(dtype=torch.int8)
    codec.save_pretrained(tmp_path)  # still unfolded: a prepared model refuses to be saved


def test_a_whole_model_cast_to_bfloat16_still_codes():
    codec = tiny_codec(causal=True).prepare_for_inference().to(torch.bfloat16)
    wav = 0.3 * torch.randn(1, 1, 4000)
    with torch.inference_mode():
        encoded = codec.encode(wav)
        audio = codec.decode(encoded)
        streamed = codec.streaming_encoder()
        codes = torch.cat([streamed.push(wav), streamed.flush()], dim=-1)
    assert audio.shape == wav.shape and torch.isfinite(audio).all()
    assert (codes == encoded.codes).float().mean() > 0.9
