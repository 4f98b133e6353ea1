import pytest
import torch

from audiocodec.coding import chunked
from audiocodec.coding.chunked import ChunkedRunner, input_start, runs_in_chunks
from audiocodec.modules.conv import PaddedConv1d, PaddedConvTranspose1d
from audiocodec.modules.seanet import ResidualUnit
from tiny_models import tiny_codec


# Every chunk length on short signals; the long one with the chunks a long file gets (2 ms chunks of 12000 samples
# are 750 Python-level steps and test nothing 3001 samples do not).
@pytest.mark.parametrize("chunk_seconds,length", [
    *((seconds, length) for seconds in (0.002, 0.05, 0.3) for length in (5, 3001)), (0.05, 12000), (0.3, 12000),
])
@pytest.mark.parametrize("channels", [1, 2])
def test_coding_in_chunks_equals_the_whole_signal(chunk_seconds, length, channels):
    codec = tiny_codec(ratios=(4, 2), lstm=1, channels=channels)
    wav = 0.3 * torch.randn(2, channels, length)
    with torch.no_grad():
        whole = codec.encode(wav)
        encoded = chunked.encode_in_chunks(codec, wav, int(chunk_seconds * codec.sample_rate))
        assert torch.equal(encoded.codes, whole.codes) and encoded.length == length
        audio = chunked.decode_in_chunks(codec, whole, max(1, int(chunk_seconds * codec.frame_rate)))
        torch.testing.assert_close(audio, codec.decode(whole), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("changes", [
    dict(lstm=0),  # no LSTM: one stack, which down-samples (encoder) or up-samples (decoder)
    dict(true_skip=True, n_residual_layers=2, dilation_base=3),
    dict(ratios=(5, 3, 2), kernel_size=5, last_kernel_size=3, residual_kernel_size=5, target_bandwidths=(1.0, 2.0)),
    dict(lstm=2, channels=2),
], ids=["no-lstm", "skips-dilations", "odd-ratios-kernels", "stereo-2-layer-lstm"])
def test_other_layouts_code_in_chunks_as_a_whole(changes):
    codec = tiny_codec(**changes)
    assert runs_in_chunks(codec)
    wav = 0.3 * torch.randn(1, codec.channels, 7777)
    with torch.no_grad():
        whole = codec.encode(wav)
        assert torch.equal(chunked.encode_in_chunks(codec, wav, 1000).codes, whole.codes)
        audio = chunked.decode_in_chunks(codec, whole, 25)
        torch.testing.assert_close(audio, codec.decode(whole), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("layer", [
    PaddedConv1d(2, 3, 7, causal=True),
    PaddedConv1d(2, 3, 4, stride=2, causal=True),
    PaddedConv1d(2, 3, 3, stride=3, dilation=2, causal=True),
    PaddedConvTranspose1d(2, 3, 4, stride=2, causal=True),
    PaddedConvTranspose1d(2, 3, 10, stride=5, causal=True),
    PaddedConvTranspose1d(2, 3, 5, stride=3, causal=True),  # kernel not a multiple of the stride
    ResidualUnit(4, (3, 1), (2, 1), causal=True),
], ids=lambda layer: type(layer).__name__)
def test_input_start_is_the_first_input_an_output_depends_on(layer):
    channels = layer.block[1].conv.in_channels if isinstance(layer, ResidualUnit) else (
        layer.conv.in_channels if isinstance(layer, PaddedConv1d) else layer.convtr.in_channels)
    x = torch.randn(1, channels, 60)
    with torch.no_grad():
        reference = layer(x)
        earliest = {}
        for position in reversed(range(60)):  # the smallest position that changes an output is its first input
            moved = x.clone()
            moved[..., position] += 1.0
            changed = (layer(moved) - reference).abs().amax(dim=1)[0] > 1e-6
            for output in changed.nonzero().flatten().tolist():
                earliest[output] = position
    # Outputs whose inputs lie inside the signal (the left edge is padded, so its outputs look further back).
    inside = [output for output in earliest if input_start(layer, output) > 0]
    assert len(inside) > 10
    assert all(earliest[output] == input_start(layer, output) for output in inside)


def test_the_look_back_is_exactly_what_an_output_depends_on():
    """An output is exact when its stack sees `look_back` inputs before it: one more is not needed, one fewer
    changes it. Measured by perturbing single inputs of the stacks around the LSTM."""
    from audiocodec.modules.seanet import run_layers

    codec = tiny_codec(ratios=(4, 2), lstm=1)
    encoder_stack, decoder_stack = ChunkedRunner(codec.encoder).before, ChunkedRunner(codec.decoder).after
    assert (encoder_stack.down, encoder_stack.up, decoder_stack.down, decoder_stack.up) == (8, 1, 1, 8)
    for stack, channels in ((encoder_stack, codec.channels), (decoder_stack, codec.decoder.model[1].lstm.hidden_size)):
        assert stack.look_back > 0
        step = 20  # an output step well inside the signal: outputs step * up, from inputs step * down on
        x = torch.randn(1, channels, 40 * stack.down)
        with torch.no_grad():
            reference = run_layers(stack.layers, x)[..., step * stack.up]
            for position, changes in ((step * stack.down - stack.look_back, True),
                                      (step * stack.down - stack.look_back - 1, False)):
                moved = x.clone()
                moved[..., position] += 1.0
                output = run_layers(stack.layers, moved)[..., step * stack.up]
                assert (not torch.allclose(output, reference, rtol=0, atol=1e-6)) == changes, position


def test_models_that_look_ahead_do_not_run_in_chunks():
    assert runs_in_chunks(tiny_codec(causal=True))
    assert not runs_in_chunks(tiny_codec(causal=False))
    looks_ahead = tiny_codec(causal=True, trim_right_ratio=0.5)  # trims its transposed convolutions on the left
    assert not runs_in_chunks(looks_ahead)
    with pytest.raises(TypeError, match="looks ahead"):
        ChunkedRunner(looks_ahead.decoder)


def test_the_default_model_codes_long_audio_in_chunks_as_a_whole():
    from audiocodec import Codec

    codec = Codec.from_pretrained("default").prepare_for_inference()
    time = torch.arange(int(2.5 * codec.sample_rate)) / codec.sample_rate
    wav = (0.2 * torch.sin(2 * torch.pi * 220 * time) + 0.05 * torch.randn(time.shape[0]))[None, None]
    with torch.inference_mode():
        whole = codec.encode(wav)
        assert torch.equal(chunked.encode_in_chunks(codec, wav, codec.sample_rate // 2).codes, whole.codes)
        audio = chunked.decode_in_chunks(codec, whole, int(codec.frame_rate) // 2)
        torch.testing.assert_close(audio, codec.decode(whole), rtol=1e-4, atol=1e-5)
