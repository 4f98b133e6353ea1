"""How each kind of layer runs on a signal that arrives in pieces: the one source of truth for chunked and
streaming coding.

A layer says how it streams with a class attribute, `STREAMING` (as moshi's modules carry their own streaming
state): the padded convolutions, the LSTM block, the residual unit and the SEANet stacks declare theirs where they
are defined. The activations come from `torch.nn` by name (`CodecConfig.activation`), so the pointwise ones are
listed here, once. `model.streaming` and `coding.chunked` dispatch on `streaming_kind(layer)` and keep no lists
of layer types, so a new layer that declares a kind needs no edit there (a new *kind* does: a runner must learn
what state it holds).
"""

from __future__ import annotations

import enum

from torch import nn


class Streaming(enum.Enum):
    """What a layer holds between pieces of a signal."""

    POINTWISE = "pointwise"  # each time step on its own (activations): nothing
    CONV = "conv"  # a causal convolution: the input its next windows still need
    TRANSPOSED = "transposed"  # a transposed convolution: the tail of its output that overlaps the next piece's
    RECURRENT = "recurrent"  # the LSTM block: its hidden and cell states
    RESIDUAL = "residual"  # shortcut + block: whichever side has answered further, until the other catches up
    SEQUENCE = "sequence"  # layers one after the other (`sublayers`), each holding its own


#: `torch.nn` activations that act on each time step on their own: a convolution can apply them window by window
#: (`seanet.run_layers`), and chunks and streams need keep nothing for them. `modules.activations.ELU` is an
#: `nn.ELU`.
POINTWISE_ACTIVATIONS = (nn.ELU, nn.ReLU, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.Identity)


def streaming_kind(layer: nn.Module) -> Streaming:
    """How `layer` streams: its `STREAMING`, or its kind as a pointwise activation or an `nn.Sequential`; a
    `TypeError` naming it for a layer that does not say."""
    kind = getattr(layer, "STREAMING", None)
    if isinstance(kind, Streaming):
        return kind
    if isinstance(layer, POINTWISE_ACTIVATIONS):
        return Streaming.POINTWISE
    if isinstance(layer, nn.Sequential):
        return Streaming.SEQUENCE
    raise TypeError(f"{type(layer).__name__} does not say how it streams (a STREAMING class attribute)")


def is_pointwise(layer: nn.Module) -> bool:
    """Whether `layer` acts on each time step on its own (`Streaming.POINTWISE`)."""
    try:
        return streaming_kind(layer) is Streaming.POINTWISE
    except TypeError:
        return False


def sublayers(layer: nn.Module) -> list[nn.Module]:
    """The layers a `Streaming.SEQUENCE` layer runs in order: an `nn.Sequential`'s own, or a SEANet stack's
    `model`."""
    return list(layer if isinstance(layer, nn.Sequential) else layer.model)
