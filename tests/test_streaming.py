import pytest
import torch

from tiny_models import tiny_codec


def stream_encode(codec, wav, chunk):
    encoder = codec.streaming_encoder()
    parts = [encoder.push(wav[..., i : i + chunk]) for i in range(0, wav.shape[-1], chunk)]
    return torch.cat([*parts, encoder.flush()], dim=-1)


def stream_decode(codec, codes, chunk):
    decoder = codec.streaming_decoder()
    parts = [decoder.push(codes[..., i : i + chunk]) for i in range(0, codes.shape[-1], chunk)]
    return torch.cat([*parts, decoder.flush()], dim=-1)


# Every chunk size on short signals; the long signal (several LSTM states and padding phases deep) with the larger
# chunks only, since a push of 8 samples costs as much Python as one of 1001.
@pytest.mark.parametrize("chunk,length", [
    *((chunk, length) for chunk in (8, 13, 256, 1001) for length in (5, 3001)), (256, 12000), (1001, 12000),
])
def test_streaming_equals_whole_signal(chunk, length):
    codec = tiny_codec(ratios=(4, 2), lstm=1)
    codec.set_target_bandwidth(8.0)
    wav = 0.3 * torch.randn(2, 1, length)
    with torch.no_grad():
        whole = codec.encode(wav)
        codes = stream_encode(codec, wav, chunk)
        assert torch.equal(codes, whole.codes)
        audio = stream_decode(codec, codes, max(1, chunk // 8))[..., :length]
        torch.testing.assert_close(audio, codec.decode(whole), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("pad_mode", ["replicate", "constant"])
def test_streaming_equals_whole_signal_with_other_padding(pad_mode):
    """1x1 convolutions consume all their input: with replicate padding, padding that empty rest by nothing
    crashed the flush."""
    codec = tiny_codec(ratios=(4, 2), lstm=1, pad_mode=pad_mode)
    codec.set_target_bandwidth(8.0)
    wav = 0.3 * torch.randn(1, 1, 3001)
    with torch.no_grad():
        whole = codec.encode(wav)
        codes = stream_encode(codec, wav, 13)
        assert torch.equal(codes, whole.codes)
        torch.testing.assert_close(stream_decode(codec, codes, 2)[..., :3001], codec.decode(whole), rtol=1e-4,
                                   atol=1e-5)


def test_non_causal_models_refuse_to_stream():
    codec = tiny_codec(causal=False)
    with pytest.raises(ValueError, match="causal"):
        codec.streaming_encoder()


@pytest.mark.parametrize("length,chunk", [(10, 7), (100, 7), (24001, 480)])
def test_streaming_the_default_model_equals_encode_on_short_signals(length, chunk):
    """On a few samples the residual units' blocks hold input back (too short to pad) while their shortcuts do not;
    their outputs used to be concatenated instead of summed. The one check of streaming on the default model (the
    tiny models above cover chunk sizes); a second in 20 ms pushes, as live audio arrives."""
    from audiocodec import Codec

    codec = Codec.from_pretrained("default")
    wav = 0.3 * torch.randn(1, 1, length, generator=torch.Generator().manual_seed(length))
    with torch.no_grad():
        assert torch.equal(stream_encode(codec, wav, chunk), codec.encode(wav).codes)


def test_streams_start_at_once_without_holding_audio_back():
    """Live audio needs codes, and sound, as soon as the layers have their samples: after 200 ms in 20 ms pushes
    the default model has given codes for all but its last frame, and its decoder sound for all but a frame."""
    from audiocodec import Codec

    codec = Codec.from_pretrained("default").prepare_for_inference()
    wav = 0.3 * torch.randn(1, 1, codec.sample_rate // 5, generator=torch.Generator().manual_seed(1))
    encoder, decoder = codec.streaming_encoder(), codec.streaming_decoder()
    with torch.inference_mode():
        codes = torch.cat([encoder.push(wav[..., i : i + 480]) for i in range(0, wav.shape[-1], 480)], dim=-1)
        assert codes.shape[-1] >= codec.num_frames(wav.shape[-1]) - 1
        audio = torch.cat([decoder.push(codes[..., i : i + 1]) for i in range(codes.shape[-1])], dim=-1)
        assert audio.shape[-1] >= (codes.shape[-1] - 1) * codec.hop_length


def test_empty_pushes_give_nothing_and_a_flushed_stream_takes_no_more():
    codec = tiny_codec(ratios=(4, 2), lstm=1)
    wav = 0.3 * torch.randn(1, 1, 801)
    encoder, decoder = codec.streaming_encoder(), codec.streaming_decoder()
    with torch.no_grad():
        empty = wav[..., :0]  # an audio device's read that had nothing yet, before, between and after audio
        parts = [encoder.push(empty), encoder.push(wav[..., :400]), encoder.push(empty), encoder.push(wav[..., 400:]),
                 encoder.push(empty), encoder.flush()]
        assert parts[0].shape == (1, codec.n_q_for_bandwidth(codec.bandwidth), 0)
        codes = torch.cat(parts, dim=-1)
        assert torch.equal(codes, codec.encode(wav).codes)
        assert decoder.push(codes[..., :0]).shape == (1, 1, 0)
        audio = torch.cat([decoder.push(codes[..., :0]), decoder.flush()], dim=-1)  # only empty pushes
        assert audio.shape == (1, 1, 0)
        for stream, data in ((encoder, wav), (decoder, codes)):
            with pytest.raises(RuntimeError, match="flushed"):
                stream.push(data)
            with pytest.raises(RuntimeError, match="flushed"):
                stream.flush()


@pytest.mark.parametrize("activation", ["Sigmoid", "GELU"])
def test_any_pointwise_activation_streams_and_codes_in_chunks(activation):
    """Streaming and chunked coding read how a layer streams from one place (`modules.streamable`): `Sigmoid`
    was once pointwise to the chunked path and unknown to the streaming one (`push` raised TypeError)."""
    from audiocodec.coding.chunked import runs_in_chunks

    codec = tiny_codec(activation=activation)
    codec.set_target_bandwidth(8.0)
    wav = 0.3 * torch.randn(1, 1, 3001)
    with torch.no_grad():
        whole = codec.encode(wav)
        assert torch.equal(stream_encode(codec, wav, 13), whole.codes)
    assert runs_in_chunks(codec)
