"""Models with segments, one segment at a time: the codes and audio of the whole-signal `encode` / `decode`."""
import random

import pytest
import torch

from audiocodec.model import EncodedAudio
from audiocodec.model.segmented import OverlapAdd, decoded_segments, encode_segments
from tiny_models import tiny_codec


def _whole_overlap_add(frames: list[torch.Tensor], stride: int) -> torch.Tensor:
    """EnCodec's `_linear_overlap_add`, written out for the whole signal at once."""
    t = torch.linspace(0, 1, frames[0].shape[-1] + 2)[1:-1]
    weight = 0.5 - (t - 0.5).abs()
    total = stride * (len(frames) - 1) + frames[-1].shape[-1]
    out, weight_sum = torch.zeros(*frames[0].shape[:-1], total), torch.zeros(total)
    for i, frame in enumerate(frames):
        n = frame.shape[-1]
        out[..., i * stride : i * stride + n] += weight[:n] * frame
        weight_sum[i * stride : i * stride + n] += weight[:n]
    return out / weight_sum


@pytest.mark.parametrize("stride, total", [(99, 334), (60, 280), (30, 153), (100, 200)])
def test_overlap_add_pushed_one_segment_at_a_time_is_the_whole_signals_to_the_bit(stride, total):
    """Overlaps of 1%, 40% and 70% (three segments on some samples), short last segments, none at all."""
    generator = torch.Generator().manual_seed(stride)
    frames = [torch.randn(2, 3, min(100, total - offset), generator=generator) for offset in range(0, total, stride)]
    joiner = OverlapAdd(stride)
    pieces = [joiner.push(frame) for frame in frames] + [joiner.flush()]
    assert [piece.shape[-1] for piece in pieces[:-2]] == [stride] * (len(frames) - 1)  # each as soon as finished
    assert torch.equal(torch.cat(pieces, dim=-1), _whole_overlap_add(frames, stride))


def _segmented_codec(**changes):
    # 0.3013 s at 8 kHz is 2,410 samples, not a whole number of 8-sample frames: decoded segments run 6 samples
    # past their end, into the next segment's fade, as in EnCodec.
    settings = dict(channels=2, normalize=True, segment=0.3013, overlap=0.05, causal=False, norm="time_group_norm")
    return tiny_codec(**{**settings, **changes})


def _random_blocks(x: torch.Tensor, seed: int):
    rng, begin = random.Random(seed), 0
    while begin < x.shape[-1]:
        size = rng.choice([1, 13, 700, 2410, 9000])
        yield x[..., begin : begin + size]
        begin += size


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("length", [1, 2410, 2411, 8000 * 2 + 3])
def test_segments_coded_as_blocks_arrive_give_encodes_codes_and_decodes_audio(normalize, length):
    codec = _segmented_codec(normalize=normalize)
    wav = 0.1 * torch.randn(1, 2, length, generator=torch.Generator().manual_seed(length))
    expected = codec.encode(wav)
    codes, scales = encode_segments(codec, _random_blocks(wav, length), length)
    assert torch.equal(codes, expected.codes)
    assert (scales is None) == (not normalize) and (scales is None or torch.equal(scales, expected.scales))

    with torch.inference_mode():
        pieces = list(decoded_segments(codec, expected))
        whole = codec.decode(expected)
    assert sum(piece.shape[-1] for piece in pieces) == length
    assert len(pieces) == 1 or max(piece.shape[-1] for piece in pieces) <= codec.segment_length
    assert torch.equal(torch.cat(pieces, dim=-1), whole)


def test_blocks_shorter_than_promised_are_refused():
    codec = _segmented_codec()
    with pytest.raises(ValueError, match="fewer than the 5000 samples"):
        encode_segments(codec, [torch.zeros(1, 2, 4000)], 5000)


def test_a_model_without_segments_decodes_in_one_piece():
    codec = tiny_codec(causal=True)
    encoded = codec.encode(0.1 * torch.randn(1, 1, 1234))
    pieces = list(decoded_segments(codec, encoded))
    assert len(pieces) == 1 and pieces[0].shape == (1, 1, 1234)
    assert isinstance(encoded, EncodedAudio)
