"""Each layer says how it streams (`STREAMING`), and the streaming and chunked runners follow what it says."""

import pytest
import torch
from torch import nn

from audiocodec.coding.chunked import ChunkedRunner, input_start
from audiocodec.model.streaming import StreamingRunner
from audiocodec.modules.streamable import Streaming, is_pointwise, streaming_kind
from tiny_models import tiny_codec


class Halve(nn.Module):
    """A layer neither runner has heard of, which declares that it acts on each time step on its own."""

    STREAMING = Streaming.POINTWISE

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x


def test_every_layer_of_a_model_says_how_it_streams():
    codec = tiny_codec()
    kinds = {streaming_kind(layer) for stack in (codec.encoder, codec.decoder) for layer in stack.model}
    assert kinds == {Streaming.CONV, Streaming.TRANSPOSED, Streaming.RECURRENT, Streaming.RESIDUAL,
                     Streaming.POINTWISE}
    assert streaming_kind(codec.encoder) is Streaming.SEQUENCE


def test_a_layer_that_does_not_say_is_refused_by_name():
    with pytest.raises(TypeError, match="Softmax does not say how it streams"):
        streaming_kind(nn.Softmax(dim=1))
    assert not is_pointwise(nn.Softmax(dim=1))
    with pytest.raises(TypeError, match="Softmax cannot run in chunks"):
        input_start(nn.Softmax(dim=1), 0)


def test_a_new_layer_that_declares_its_kind_streams_and_runs_in_chunks_with_no_edit_elsewhere():
    codec = tiny_codec()
    encoder = codec.encoder
    at = next(i for i, layer in enumerate(encoder.model) if is_pointwise(layer))
    encoder.model[at] = Halve()
    wav = 0.3 * torch.randn(1, 1, 2001)
    with torch.no_grad():
        whole = encoder(wav)
        runner = StreamingRunner(encoder)
        parts = [runner.push(wav[..., i : i + 37]) for i in range(0, wav.shape[-1], 37)]
        streamed = torch.cat([p for p in [*parts, runner.flush()] if p is not None], dim=-1)
        chunked = ChunkedRunner(encoder)
        step = chunked.length_step * 64
        pieces = torch.cat([chunked.push(wav[..., i : i + step]) for i in range(0, wav.shape[-1], step)], dim=-1)
    torch.testing.assert_close(streamed, whole, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(pieces, whole, rtol=1e-4, atol=1e-5)
