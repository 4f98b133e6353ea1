"""LSTM over convolutional layout `[B, C, T]`, with a skip connection, as in EnCodec's SEANet."""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from .streamable import Streaming

#: Inference on this many time steps or fewer runs PyTorch's own LSTM kernel instead of oneDNN's (`_kernel_for`).
SHORT_SEQUENCE = 16


class ConvLSTM(nn.Module):
    """`[B, C, T] -> [B, C, T]`: a stack of LSTM layers along time plus the input (a residual block).

    The LSTM gives the encoder and decoder a long receptive field at the lowest frame rate, where it is cheap.
    """

    STREAMING = Streaming.RECURRENT

    def __init__(self, dimension: int, num_layers: int = 2, skip: bool = True):
        super().__init__()
        self.skip = skip
        self.lstm: nn.Module = nn.LSTM(dimension, dimension, num_layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resume(x, None)[0]

    def resume(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None
               ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """`(self(x), state after x)`, starting from `state` (None: from the start): the LSTM carries the only
        unbounded memory of a SEANet, which chunked and streaming runs pass from one chunk to the next."""
        x = x.permute(2, 0, 1)
        with _kernel_for(x):
            y, state = self.lstm(x, state)
        if self.skip:
            y = y + x
        return y.permute(1, 2, 0), state

    def run_layerwise(self, layerwise: bool = True) -> None:
        """Run the stack one layer at a time from now on (`LayerwiseLSTM`), for inference; or as one stack again."""
        if layerwise and isinstance(self.lstm, nn.LSTM) and self.lstm.num_layers > 1:
            self.lstm = LayerwiseLSTM(self.lstm)
        elif not layerwise and isinstance(self.lstm, LayerwiseLSTM):
            self.lstm = self.lstm.stacked()


class LayerwiseLSTM(nn.Module):
    """A stacked `nn.LSTM` run as one single-layer `nn.LSTM` per layer: the same maths and the same call,
    `(x, (h, c)) -> (y, (h, c))` with states stacked over layers.

    Why: in float16, PyTorch hands single-layer LSTMs (hidden and input sizes multiples of 128, batch a multiple
    of 8 up to 128, on Ampere-class and newer data-centre GPUs) to cuDNN's persistent kernel, which keeps the
    recurrent weights on chip for the whole sequence; a stacked LSTM always gets the standard kernel, which
    reloads them at every time step. At the encoder's frame rate that recurrence is a long chain of small steps.
    The layers hold copies of the stack's weights, so this is for inference (`Codec.prepare_for_inference`).
    """

    def __init__(self, stacked: nn.LSTM):
        super().__init__()
        if stacked.bidirectional or stacked.proj_size or stacked.batch_first or not stacked.bias:
            raise ValueError("LayerwiseLSTM takes a unidirectional, time-first LSTM with biases and no projection")
        self.layers = nn.ModuleList()
        for k in range(stacked.num_layers):
            input_size = stacked.input_size if k == 0 else stacked.hidden_size
            self.layers.append(_copy_weights(stacked, k, _uninitialised_lstm(input_size, stacked.hidden_size, 1,
                                                                              stacked.weight_ih_l0), 0))

    def stacked(self) -> nn.LSTM:
        """The equivalent stacked `nn.LSTM`."""
        first = self.layers[0]
        stack = _uninitialised_lstm(first.input_size, first.hidden_size, len(self.layers), first.weight_ih_l0)
        for k, layer in enumerate(self.layers):
            _copy_weights(layer, 0, stack, k)
        return stack

    def forward(self, x: torch.Tensor, hx: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        hidden, cell = [], []
        for k, layer in enumerate(self.layers):
            x, (h, c) = layer(x, None if hx is None else (hx[0][k : k + 1], hx[1][k : k + 1]))
            hidden.append(h)
            cell.append(c)
        return x, (torch.cat(hidden), torch.cat(cell))


@contextlib.contextmanager
def _kernel_for(x: torch.Tensor):
    """Inference on a few time steps on the CPU runs PyTorch's own LSTM kernel, not oneDNN's.

    oneDNN prepares its primitive and its weight layout at every call, about a millisecond before any work. On
    one frame, one thread, a 2-layer LSTM of 256 took 1.46 ms with oneDNN and 0.43 ms without (512: 3.19 and 1.05
    ms); from about 50 steps on oneDNN is the faster. Real-time streaming pushes a frame or two at a time. PyTorch
    chooses by a global flag, so it is switched off for the call and restored: another thread's oneDNN work at
    that moment takes PyTorch's other kernels (same results up to float rounding), and a change another thread
    makes to the flag meanwhile is undone. Training keeps oneDNN, twice as fast for the forward and backward
    passes (batch 8 x 38 steps). Half precision keeps it too: PyTorch's kernel is less accurate there (in
    float16, 2% of streamed codes differed from whole-signal ones with it, none without).
    """
    short = (x.shape[0] <= SHORT_SEQUENCE and x.device.type == "cpu" and x.dtype == torch.float32
             and not torch.is_grad_enabled())
    if not (short and torch.backends.mkldnn.enabled):
        yield
        return
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = True


def _uninitialised_lstm(input_size: int, hidden_size: int, num_layers: int, like: torch.Tensor) -> nn.LSTM:
    """An `nn.LSTM` on `like`'s device and dtype, without drawing random initial weights (which would move the
    global random state as a side effect of preparing a model)."""
    lstm = nn.LSTM(input_size, hidden_size, num_layers, device="meta", dtype=like.dtype)
    return lstm.to_empty(device=like.device)


def _copy_weights(source: nn.LSTM, source_layer: int, target: nn.LSTM, target_layer: int) -> nn.LSTM:
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(target, f"{name}_l{target_layer}").copy_(getattr(source, f"{name}_l{source_layer}"))
    return target
