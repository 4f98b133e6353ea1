"""ONNX export of a `Codec`: whole-signal encoder and decoder graphs, and for causal models one streaming step
of each with its state as explicit inputs and outputs.

What is written (`export_onnx`):

* `encoder.onnx`: `audio` float32 `[batch, channels, samples]` (and optionally `levels`, an int64 scalar, n_q
  unless given) -> `codes` int64 `[batch, levels, frames]`: every level by default, and a bandwidth of k codebooks
  is the first k, which `levels=k` computes alone; `scale` float32 `[batch]` for models that normalise.
  For a model that codes in segments (EnCodec's 48 kHz), the graph codes one segment; cutting a signal into
  segments and joining decoded segments is numpy work, in `audiocodec.export.runtime`.
* `decoder.onnx`: `codes` int64 `[batch, k, frames]`, any k from 1 to n_q (and `scale` `[batch]` where the model
  normalises) -> `audio` float32 `[batch, channels, frames * hop]`, which a caller trims to the coded length.
* for causal models without segments, `encoder_step.onnx` and `decoder_step.onnx`: one step of a stream, inputs
  `audio` (or `codes`) then the state, outputs `codes` (or `audio`) then the new state. A step takes a whole number
  of frames (`hop` samples each); the first step at least `first_step_frames` of them, because every causal
  convolution reflects the first samples of its input at the start of a signal, as the whole-signal graph does,
  and at the lowest rates that needs several frames. The initial state is all zeros (`started` false); its
  tensors and shapes are listed in `onnx.json`. The steps then give exactly what `Codec.streaming_encoder().push`
  and `streaming_decoder().push` give for the same chunks, up to float rounding.
* `onnx.json`: rate, channels, hop, frame rate, bandwidths and their codebook counts, segments, opset, the
  graphs' inputs and outputs, and the state tensors; `code_frequencies.npy`: the entropy coder's tables, with
  which `audiocodec.export.runtime.decode_file` reads `.ac` files.

The graphs hold plain operators (Pad-free reflection by Gather, Conv, ConvTranspose, Elu, LSTM, Gemm, ArgMax,
Gather) with weight norm folded into the weights, opset `OPSET`, dynamic batch and time axes. Nearest-code search
is EnCodec's expression `-(|x|^2 - 2 x.E + |E|^2)` term for term, so codes differ from PyTorch's only where the
convolutions' float rounding moves a near-tie (tests/export/test_onnx.py measures how often).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import AudioCodecError
from .graph import INT64_MAX, Graph

if TYPE_CHECKING:  # annotations only: torch and onnx are imported where the export runs
    import torch
    from onnx import ModelProto, ValueInfoProto
    from torch import nn

    from ..model import Codec
    from ..modules import ConvLSTM, PaddedConv1d, PaddedConvTranspose1d
    from ..quantization import ResidualVectorQuantizer

#: The ONNX opset the graphs are written in (onnxruntime 1.14 and later run it).
OPSET = 17
MANIFEST = "onnx.json"
#: The entropy coder's code counts `[n_q, bins]` (float32), which decoding a `.ac` file needs.
FREQUENCIES = "code_frequencies.npy"
FILES = ("encoder.onnx", "decoder.onnx", "encoder_step.onnx", "decoder_step.onnx", MANIFEST, FREQUENCIES)


class ExportError(AudioCodecError):
    """A model that this exporter cannot write as ONNX (the message says which part and why)."""


# -- the layers -----------------------------------------------------------------------------------------------------
def _array(tensor: torch.Tensor) -> np.ndarray:
    """A float32 numpy copy; of a weight-normed layer's `weight`, the plain weight `g * v / |v|` it computes."""
    import torch

    with torch.no_grad():
        return tensor.detach().float().cpu().numpy().copy()


class State:
    """One state tensor of a step graph: its input and output names, shape (with 'batch'), dtype."""

    def __init__(self, name: str, shape: list, dtype: str):
        self.name, self.shape, self.dtype = name, shape, dtype
        self.input, self.output = f"{name}", f"{name}_out"


class Emitter:
    """Writes the layers of a SEANet (and the quantizer) into `graph`, whole-signal or as one streaming step."""

    def __init__(self, graph: Graph, step: bool, prefix: str):
        self.g = graph
        self.step = step
        self.prefix = prefix
        self.states: list[State] = []
        self.updates: list[tuple[State, str]] = []
        self.started: str | None = None
        if step:
            started = self.state("started", [1], "bool")  # false in the initial state, true after a step
            self.started = started.input
            self.updates.append((started, self.g.op("Or", [started.input, self.g.constant(np.array([True]))])))

    def state(self, kind: str, shape: list, dtype: str = "float32") -> State:
        state = State(f"{self.prefix}{len(self.states)}_{kind}", shape, dtype)
        self.states.append(state)
        return state

    # -- dispatch ----------------------------------------------------------------------------------------------
    def run(self, module: nn.Module, x: str) -> str:
        from torch import nn

        from ..modules import ConvLSTM, PaddedConv1d, PaddedConvTranspose1d
        from ..modules.seanet import ResidualUnit

        if isinstance(module, nn.Sequential):
            for layer in module:
                x = self.run(layer, x)
            return x
        if isinstance(module, PaddedConv1d):
            return self.conv(module, x)
        if isinstance(module, PaddedConvTranspose1d):
            return self.transposed(module, x)
        if isinstance(module, ConvLSTM):
            return self.lstm(module, x)
        if isinstance(module, ResidualUnit):
            return self.g.add(self.run(module.shortcut, x), self.run(module.block, x))
        return self.activation(module, x)

    def activation(self, module: nn.Module, x: str) -> str:
        from torch import nn

        g = self.g
        if isinstance(module, nn.Identity):
            return x
        if isinstance(module, nn.ELU):
            return g.op("Elu", [x], alpha=float(module.alpha))
        if isinstance(module, nn.ReLU):
            return g.op("Relu", [x])
        if isinstance(module, nn.LeakyReLU):
            return g.op("LeakyRelu", [x], alpha=float(module.negative_slope))
        if isinstance(module, nn.Tanh):
            return g.op("Tanh", [x])
        if isinstance(module, nn.Sigmoid):
            return g.op("Sigmoid", [x])
        if isinstance(module, nn.SiLU):
            return g.op("Mul", [x, g.op("Sigmoid", [x])])
        raise ExportError(f"cannot export layer {type(module).__name__} to ONNX (supported activations: ELU, ReLU, "
                          f"LeakyReLU, Tanh, Sigmoid, SiLU)")

    def norm(self, module: nn.Module, x: str) -> str:
        from torch import nn

        if isinstance(module, nn.Identity):
            return x
        if not isinstance(module, nn.GroupNorm) or module.num_groups != 1:
            raise ExportError(f"cannot export normalisation {type(module).__name__} to ONNX")
        g = self.g
        mean = g.op("ReduceMean", [x], axes=[1, 2], keepdims=1)
        centred = g.sub(x, mean)
        var = g.op("ReduceMean", [g.mul(centred, centred)], axes=[1, 2], keepdims=1)
        y = g.op("Div", [centred, g.op("Sqrt", [g.add(var, g.floats(module.eps))])])
        if module.affine:
            y = g.add(g.mul(y, g.weight(_array(module.weight)[:, None])), g.weight(_array(module.bias)[:, None]))
        return y

    # -- padding ----------------------------------------------------------------------------------------------
    def reflect_left(self, x: str, left: int, n: str) -> str:
        """The `left` samples that reflection puts before `x` (`x[left], ..., x[1]`), zero where `x` is shorter
        (pad1d zero-extends a short input before reflecting it); `n`: x's length. (A step graph computes this at
        every step, on inputs shorter than `left` too, and uses it only at the first.)"""
        g = self.g
        index = g.ints(*range(left, 0, -1))
        last = g.sub(n, g.ints(1))
        part = g.op("Gather", [x, g.minimum(index, last)], axis=2)
        inside = g.op("Cast", [g.op("Less", [index, n])], to=1)
        return g.mul(part, inside)

    def pad(self, x: str, left: int, right: int, extra: str | None, mode: str) -> str:
        """`pad1d(x, left, right + extra, mode)` for any length of `x`; `extra`: an int64 `[1]` value or None."""
        g = self.g
        right_total = g.ints(right) if extra is None else (g.add(extra, g.ints(right)) if right else extra)
        if not left and not right and extra is None:
            return x
        if mode in ("constant", "replicate"):
            pads = g.concat([g.ints(0, 0, left, 0, 0), right_total], axis=0)
            return g.op("Pad", [x, pads], mode="constant" if mode == "constant" else "edge")
        n = g.length(x)
        parts = [self.reflect_left(x, left, n)] if left else []
        parts.append(x)
        if right or extra is not None:
            # Reflect around the last sample of x zero-extended to m = n + e samples, e = max(0, max(left, r) - n
            # + 1), and keep the samples past n: index q = 2 (m - 1) - p for p in [n, n + r).
            e = g.maximum(g.ints(0), g.add(g.sub(g.maximum(g.ints(left), right_total), n), g.ints(1)))
            m = g.add(n, e)
            scalar = lambda v: g.op("Squeeze", [v, g.ints(0)])  # noqa: E731
            p = g.op("Range", [scalar(n), scalar(g.add(n, right_total)), scalar(g.ints(1))])
            q = g.sub(g.mul(g.sub(m, g.ints(1)), g.ints(2)), p)
            last = g.sub(n, g.ints(1))
            part = g.op("Gather", [x, g.minimum(q, last)], axis=2)
            parts.append(g.mul(part, g.op("Cast", [g.op("Less", [q, n])], to=1)))
        return g.concat(parts)

    # -- convolutions -----------------------------------------------------------------------------------------
    def conv(self, layer: PaddedConv1d, x: str) -> str:
        g = self.g
        conv = layer.conv
        weight = g.weight(_array(conv.weight))
        inputs = [weight] + ([g.weight(_array(conv.bias))] if conv.bias is not None else [])
        k, s, d, total = layer.kernel_size, layer.stride, layer.dilation, layer.padding_total
        attrs = dict(strides=[s], dilations=[d], group=conv.groups, kernel_shape=[k])
        if self.step:
            if not layer.causal:
                raise ExportError("only causal models have streaming step graphs")
            if total:
                buffer = self.state("conv", ["batch", conv.in_channels, total])
                left = g.op("Where", [self.started, buffer.input, self.reflect_left(x, total, g.length(x))]) \
                    if layer.pad_mode == "reflect" else self._start_pad(layer, x, buffer.input, total)
                x = g.concat([left, x])
                self.updates.append((buffer, g.slice(x, -total, INT64_MAX)))
            return self.norm(layer.norm, g.op("Conv", [x, *inputs], **attrs))
        left, right = (total, 0) if layer.causal else (total - total // 2, total // 2)
        extra = None
        if s > 1:  # zeros to add on the right so that the last window is full (`extra_padding_for_conv1d`)
            n = g.length(x)
            a = g.add(n, g.ints(total - k + k * s + s - 1))  # kept non-negative for the integer division
            ceil = g.sub(g.floordiv(a, s), g.ints(k))
            extra = g.sub(g.add(g.mul(ceil, g.ints(s)), g.ints(k - total)), n)
        x = self.pad(x, left, right, extra, layer.pad_mode)
        return self.norm(layer.norm, g.op("Conv", [x, *inputs], **attrs))

    def _start_pad(self, layer: PaddedConv1d, x: str, buffer: str, total: int) -> str:
        """Left context of a stream's step for constant or replicate padding: the buffer, or at the start zeros or
        copies of the first sample."""
        g = self.g
        if layer.pad_mode == "constant":
            start = g.mul(buffer, g.floats(0.0))
        else:
            start = g.op("Expand", [g.slice(x, 0, 1), g.op("Shape", [buffer])])
        return g.op("Where", [self.started, buffer, start])

    def transposed(self, layer: PaddedConvTranspose1d, x: str) -> str:
        g = self.g
        convtr = layer.convtr
        k, s = convtr.kernel_size[0], convtr.stride[0]
        if not self.step:
            bias = _array(convtr.bias) if convtr.bias is not None else None
            y = self.norm(layer.norm, self.convtr(x, _array(convtr.weight), bias, s))
            return g.slice(y, layer.trim_left, -layer.trim_right if layer.trim_right else INT64_MAX)
        overlap = k - s
        if layer.trim_right != overlap:
            raise ExportError("streaming step graphs need transposed convolutions trimmed wholly on the right "
                              "(trim_right_ratio 1): the rest of the overlap would come out only at the stream's end")
        y = self.convtr(x, _array(convtr.weight), None, s)  # the bias is added once samples are final
        if overlap:
            tail = self.state("tail", ["batch", convtr.out_channels, overlap])
            y = g.concat([g.add(g.slice(y, 0, overlap), tail.input), g.slice(y, overlap, INT64_MAX)])
            self.updates.append((tail, g.slice(y, -overlap, INT64_MAX)))
            y = g.slice(y, 0, -overlap)
        if convtr.bias is not None:
            y = g.add(y, g.weight(_array(convtr.bias)[:, None]))
        y = self.norm(layer.norm, y)
        if layer.trim_left:
            start = g.op("Where", [self.started, g.ints(0), g.ints(layer.trim_left)])
            y = g.slice(y, start, INT64_MAX)
        return y

    def convtr(self, x: str, weight: np.ndarray, bias: np.ndarray | None, stride: int) -> str:
        """`conv_transpose1d(x, weight, bias, stride)`, untrimmed. When the kernel is a multiple of the stride (SEANet's
        are twice it) as its polyphase form, an ordinary convolution giving `stride` phases per input frame,
        interleaved: the same sums (`PaddedConvTranspose1d`), and in onnxruntime twice as fast as ConvTranspose."""
        g = self.g
        in_channels, out_channels, k = weight.shape
        if k % stride:
            inputs = [x, g.weight(weight)] + ([g.weight(bias)] if bias is not None else [])
            return g.op("ConvTranspose", inputs, strides=[stride], kernel_shape=[k])
        taps = k // stride
        # [C_in, C_out, taps, stride] -> [C_out * stride, C_in, taps], taps reversed: output stride * i + j is
        # sum_m weight[:, :, j + m * stride] . x[i - m].
        kernel = weight.reshape(in_channels, out_channels, taps, stride)[:, :, ::-1]
        kernel = kernel.transpose(1, 3, 0, 2).reshape(out_channels * stride, in_channels, taps)
        inputs = [x, g.weight(kernel)] + ([g.weight(np.repeat(bias, stride))] if bias is not None else [])
        y = g.op("Conv", inputs, kernel_shape=[taps], pads=[taps - 1, taps - 1])  # [B, C_out * stride, F']
        shape = g.op("Shape", [y])
        batch, frames = g.slice(shape, 0, 1, axis=0), g.slice(shape, 2, 3, axis=0)
        phases = g.op("Reshape", [y, g.concat([batch, g.ints(out_channels, stride), frames], axis=0)])
        interleaved = g.op("Transpose", [phases], perm=[0, 1, 3, 2])
        return g.op("Reshape", [interleaved, g.concat([batch, g.ints(out_channels, -1)], axis=0)])

    def lstm(self, block: ConvLSTM, x: str) -> str:
        g = self.g
        lstm = block.lstm.stacked() if hasattr(block.lstm, "stacked") else block.lstm
        if lstm.bidirectional or lstm.proj_size or lstm.batch_first or not lstm.bias:
            raise ExportError("cannot export an LSTM that is bidirectional, batch-first, projected or without biases")
        hidden = lstm.hidden_size
        sequence = g.op("Transpose", [x], perm=[2, 0, 1])  # [T, B, C]
        y = sequence
        for k in range(lstm.num_layers):
            # PyTorch's gates are (input, forget, cell, output), ONNX's (input, output, forget, cell).
            order = lambda w: np.concatenate([w[0:hidden], w[3 * hidden:], w[hidden:2 * hidden],  # noqa: E731
                                              w[2 * hidden:3 * hidden]])
            w = g.weight(order(_array(getattr(lstm, f"weight_ih_l{k}")))[None])
            r = g.weight(order(_array(getattr(lstm, f"weight_hh_l{k}")))[None])
            b = g.weight(np.concatenate([order(_array(getattr(lstm, f"bias_ih_l{k}"))),
                                         order(_array(getattr(lstm, f"bias_hh_l{k}")))])[None])
            inputs = [y, w, r, b]
            if self.step:
                h, c = self.state("lstm_h", [1, "batch", hidden]), self.state("lstm_c", [1, "batch", hidden])
                inputs += ["", h.input, c.input]
            out, h_out, c_out = g.op("LSTM", inputs, 3, hidden_size=hidden)
            if self.step:
                self.updates += [(h, h_out), (c, c_out)]
            y = g.op("Squeeze", [out, g.ints(1)])
        if block.skip:
            y = g.add(y, sequence)
        return g.op("Transpose", [y], perm=[1, 2, 0])

    # -- quantizer --------------------------------------------------------------------------------------------
    def quantize(self, quantizer: ResidualVectorQuantizer, features: str, levels: str) -> str:
        """Codes `[B, levels, F]` of features `[B, D, F]` (`levels`: an int64 scalar, at most n_q), as
        `ResidualVectorQuantizer.encode`: a Loop over the levels, so that a lower bandwidth computes only its own."""
        import torch
        from onnx import TensorProto, helper

        from ..quantization.nearest import squared_norms

        g = self.g
        embeddings = _codebooks(quantizer)
        table = g.weight(np.stack(embeddings), "codebooks")  # [n_q, K, D]
        norms = g.weight(np.stack([_array(squared_norms(torch.from_numpy(e))) for e in embeddings]))  # PyTorch's
        batch, frames = g.op("Shape", [features], start=0, end=1), g.length(features)
        residual = g.op("Reshape", [g.op("Transpose", [features], perm=[0, 2, 1]), g.ints(-1, quantizer.dimension)])

        body = Graph(prefix="level_")
        e = body.op("Gather", [table, "level"], axis=0)  # [K, D]
        product = body.op("Gemm", ["residual", e], alpha=2.0, transB=1)  # 2 x.E^T  [N, K]
        row = body.op("ReduceSum", [body.mul("residual", "residual"), body.ints(1)], keepdims=1)
        score = body.op("Neg", [body.add(body.sub(row, product), body.op("Gather", [norms, "level"], axis=0))])
        code = body.op("ArgMax", [score], axis=1, keepdims=0)
        body.op("Sub", ["residual", body.op("Gather", [e, code], axis=0)], ["residual_out"])
        body.op("Identity", ["condition"], ["condition_out"])
        body.op("Identity", [code], ["code"])
        subgraph = helper.make_graph(
            body.nodes, "level",
            [helper.make_tensor_value_info("level", TensorProto.INT64, []),
             helper.make_tensor_value_info("condition", TensorProto.BOOL, []),
             helper.make_tensor_value_info("residual", TensorProto.FLOAT, ["rows", quantizer.dimension])],
            [helper.make_tensor_value_info("condition_out", TensorProto.BOOL, []),
             helper.make_tensor_value_info("residual_out", TensorProto.FLOAT, ["rows", quantizer.dimension]),
             helper.make_tensor_value_info("code", TensorProto.INT64, ["rows"])],
            body.initializers)
        true = g.constant(np.array(True))
        _, codes = g.op("Loop", [levels, true, residual], 2, body=subgraph)  # codes [levels, N]
        shape = g.concat([g.ints(-1), batch, frames], axis=0)
        return g.op("Transpose", [g.op("Reshape", [codes, shape])], perm=[1, 0, 2])

    def dequantize(self, quantizer: ResidualVectorQuantizer, codes: str) -> str:
        """Features `[B, D, F]` of codes `[B, k, F]`: the sum of the first k levels' vectors."""
        g = self.g
        embeddings = _codebooks(quantizer)
        bins = embeddings[0].shape[0]
        table = g.weight(np.concatenate(embeddings), "codebooks")
        levels = g.slice(g.ints(*[k * bins for k in range(len(embeddings))]), 0, g.op("Shape", [codes], start=1,
                                                                                         end=2))
        index = g.add(codes, g.op("Unsqueeze", [levels, g.ints(0, 2)]))
        vectors = g.op("Gather", [table, index], axis=0)  # [B, k, F, D]
        summed = g.op("ReduceSum", [vectors, g.ints(1)], keepdims=0)
        return g.op("Transpose", [summed], perm=[0, 2, 1])


def _codebooks(quantizer: ResidualVectorQuantizer) -> list[np.ndarray]:
    from ..quantization.codebook import EMACodebook
    from ..quantization.gumbel import GumbelCodebook

    out = []
    for level in quantizer.levels:
        if not isinstance(level, (EMACodebook, GumbelCodebook)):
            raise ExportError(f"cannot export quantizer level {type(level).__name__} to ONNX (nearest-code levels "
                              f"only)")
        out.append(_array(level.embedding))
    return out


# -- the graphs -----------------------------------------------------------------------------------------------------
def _model(graph: Graph, inputs: list, outputs: list, name: str) -> ModelProto:
    from onnx import helper

    g = helper.make_graph(graph.nodes, name, inputs, outputs, graph.initializers)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="audiocodec")
    model.ir_version = 8  # onnxruntime 1.14 and later
    return model


def _value(name: str, dtype: str, shape: list) -> ValueInfoProto:
    from onnx import TensorProto, helper

    types = {"float32": TensorProto.FLOAT, "int64": TensorProto.INT64, "bool": TensorProto.BOOL}
    return helper.make_tensor_value_info(name, types[dtype], shape)


def _normalise(g: Graph, audio: str) -> tuple[str, str]:
    """`Codec._normalise`: audio divided by 1e-8 + the RMS of its mono mix, and that scale `[B]`."""
    mono = g.op("ReduceMean", [audio], axes=[1], keepdims=1)
    volume = g.op("Sqrt", [g.op("ReduceMean", [g.mul(mono, mono)], axes=[2], keepdims=1)])
    scale = g.add(g.floats(1e-8), volume)
    return g.op("Div", [audio, scale]), g.op("Reshape", [scale, g.ints(-1)])


def encoder_graph(codec: Codec, step: bool = False) -> tuple[ModelProto, list[dict[str, Any]]]:
    """`encoder.onnx` of `codec` (or with `step`, `encoder_step.onnx`), and the step graph's state tensors as
    `onnx.json` lists them (empty for the whole-signal graph)."""
    from onnx import numpy_helper

    g = Graph()
    emit = Emitter(g, step, "encoder")
    audio = "audio"
    scale = None
    if codec.config.normalize and not step:
        audio, scale = _normalise(g, audio)
    # `levels`: codebooks to compute, n_q unless given (an initialiser of that name is the input's default).
    g.initializers.append(numpy_helper.from_array(np.array(codec.quantizer.n_q, dtype=np.int64), "levels"))
    codes = emit.quantize(codec.quantizer, emit.run(codec.encoder.model, audio), "levels")
    g.op("Identity", [codes], ["codes"])
    if scale is not None:
        g.op("Identity", [scale], ["scale"])
    inputs = [_value("audio", "float32", ["batch", codec.channels, "samples"]), _value("levels", "int64", [])]
    outputs = [_value("codes", "int64", ["batch", "levels", "frames"])]
    if scale is not None:
        outputs.append(_value("scale", "float32", ["batch"]))
    return _finish(g, emit, inputs, outputs, "audiocodec_encoder" + ("_step" if step else ""))


def decoder_graph(codec: Codec, step: bool = False) -> tuple[ModelProto, list[dict[str, Any]]]:
    """`decoder.onnx` of `codec` (or with `step`, `decoder_step.onnx`), and the step graph's state tensors."""
    g = Graph()
    emit = Emitter(g, step, "decoder")
    audio = emit.run(codec.decoder.model, emit.dequantize(codec.quantizer, "codes"))
    inputs = [_value("codes", "int64", ["batch", "levels", "frames"])]
    if codec.config.normalize and not step:
        audio = g.mul(audio, g.op("Reshape", ["scale", g.ints(-1, 1, 1)]))
        inputs.append(_value("scale", "float32", ["batch"]))
    g.op("Identity", [audio], ["audio"])
    outputs = [_value("audio", "float32", ["batch", codec.channels, "samples"])]
    return _finish(g, emit, inputs, outputs, "audiocodec_decoder" + ("_step" if step else ""))


def _finish(g: Graph, emit: Emitter, inputs: list, outputs: list,
            name: str) -> tuple[ModelProto, list[dict[str, Any]]]:
    for state, value in emit.updates:
        g.op("Identity", [value], [state.output])
    inputs += [_value(s.input, s.dtype, s.shape) for s in emit.states]
    outputs += [_value(s.output, s.dtype, s.shape) for s in emit.states]
    states = [{"input": s.input, "output": s.output, "shape": s.shape, "dtype": s.dtype} for s in emit.states]
    return _model(g, inputs, outputs, name), states


# -- streaming: the first step's length ------------------------------------------------------------------------------
def first_step_frames(codec: Codec) -> tuple[int, int]:
    """Frames the first step of the encoder and of the decoder must hold: every causal reflect-padded convolution
    needs more input samples than it pads before its first output (`StreamingRunner` waits for them too)."""
    from ..modules import PaddedConv1d, PaddedConvTranspose1d

    def need(model: nn.Module, rate: float, down: bool) -> float:
        most = 0.0
        for module in model.modules():
            if isinstance(module, PaddedConv1d):
                if module.padding_total and module.pad_mode == "reflect":
                    # samples of this layer's input per frame: `rate`; more than padding_total of them
                    most = max(most, (module.padding_total + 1) / rate)
                if module.stride > 1 and down:
                    rate /= module.stride
            elif isinstance(module, PaddedConvTranspose1d):
                rate *= module.convtr.stride[0]
        return most

    hop = codec.hop_length
    encoder = need(codec.encoder, float(hop), True)
    decoder = need(codec.decoder, 1.0, False)
    return max(1, math.ceil(encoder)), max(1, math.ceil(decoder))


# -- writing --------------------------------------------------------------------------------------------------------
def streamable(codec: Codec) -> str | None:
    """None if step graphs can be exported, else why not."""
    config = codec.config
    if not config.causal:
        return "the model is not causal"
    if config.normalize or config.segment is not None:
        return "the model codes in normalised segments"
    if config.trim_right_ratio != 1.0:
        return "its transposed convolutions are not trimmed wholly on the right (trim_right_ratio != 1)"
    return None


def export_onnx(codec: Codec, directory: str | os.PathLike, force: bool = False) -> dict[str, Any]:
    """Write the ONNX graphs of `codec` and `onnx.json` into `directory` (module docstring); returns the manifest.

    An existing folder holding any of these files is refused unless `force`; other files in it are left alone.
    """
    try:
        import onnx
    except ImportError:
        raise ExportError("ONNX export needs the onnx package: pip install 'audiocodec[onnx]'") from None
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ExportError(f"{directory}: exists and is not a folder")
    clashes = [name for name in FILES if (directory / name).exists()]
    if clashes and not force:
        from ..errors import OutputExistsError

        raise OutputExistsError(f"{directory}: already holds {', '.join(clashes)} (use --force to overwrite)")
    model = codec  # read, never changed: a weight-normed layer's `weight` is the folded weight
    graphs = {"encoder": encoder_graph(model), "decoder": decoder_graph(model)}
    why_not = streamable(model)
    if why_not is None:
        graphs["encoder_step"] = encoder_graph(model, step=True)
        graphs["decoder_step"] = decoder_graph(model, step=True)
    for proto, _ in graphs.values():
        onnx.checker.check_model(proto)
    directory.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for name, (proto, _) in graphs.items():
        _write(directory / f"{name}.onnx", proto.SerializeToString())
        sizes[f"{name}.onnx"] = (directory / f"{name}.onnx").stat().st_size
    for name in ("encoder_step.onnx", "decoder_step.onnx"):  # stale graphs of another model must not remain
        if name not in sizes and (directory / name).exists():
            (directory / name).unlink()
    import io

    buffer = io.BytesIO()
    np.save(buffer, _array(model.code_frequencies), allow_pickle=False)
    _write(directory / FREQUENCIES, buffer.getvalue())
    sizes[FREQUENCIES] = (directory / FREQUENCIES).stat().st_size
    manifest = manifest_for(model, graphs, why_not)
    _write(directory / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
    manifest["sizes"] = sizes
    return manifest


def manifest_for(codec: Codec, graphs: dict, why_not: str | None) -> dict[str, Any]:
    config = codec.config
    manifest: dict[str, Any] = {
        "format": "audiocodec-onnx",
        "version": 1,
        "opset": OPSET,
        "model": config.name,
        "model_id": codec.model_id(),
        "sample_rate": codec.sample_rate,
        "channels": codec.channels,
        "hop_length": codec.hop_length,
        "frame_rate": codec.frame_rate,
        "n_q": codec.quantizer.n_q,
        "bins": codec.quantizer.bins,
        "bandwidths": {f"{b:g}": codec.n_q_for_bandwidth(b) for b in codec.bandwidths},
        "normalize": bool(config.normalize),
        "segment_length": codec.segment_length,
        "segment_stride": codec.segment_stride,
        "graphs": {
            "encoder": {"inputs": ["audio", "levels"], "outputs": ["codes"] + (["scale"] if config.normalize else [])},
            "decoder": {"inputs": ["codes"] + (["scale"] if config.normalize else []), "outputs": ["audio"]},
        },
    }
    if why_not is None:
        encoder_frames, decoder_frames = first_step_frames(codec)
        manifest["streaming"] = {
            "step_multiple": codec.hop_length,
            "first_step_frames": {"encoder": encoder_frames, "decoder": decoder_frames},
            "encoder_step": {"inputs": ["audio", "levels"], "outputs": ["codes"], "states": graphs["encoder_step"][1]},
            "decoder_step": {"inputs": ["codes"], "outputs": ["audio"], "states": graphs["decoder_step"][1]},
        }
    else:
        manifest["streaming"] = None
        manifest["streaming_unavailable"] = why_not
    return manifest


def _write(path: Path, data: bytes) -> None:
    """Write through a temporary file beside `path`, renamed over it: never a half-written graph."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def write_for_cli(codec: Codec, directory: Path, origin: str, force: bool) -> int:
    """`audiocodec export MODEL OUT --onnx`: write the graphs and say what was written."""
    manifest = export_onnx(codec, directory, force=force)
    sizes = ", ".join(f"{name} {size / 1e6:.1f} MB" for name, size in manifest["sizes"].items())
    print(f"{directory}: ONNX graphs (opset {OPSET}) of model {codec.config.name} ({manifest['model_id']}) from "
          f"{origin}: {sizes}")
    if manifest["streaming"] is None:
        print(f"no streaming step graphs: {manifest['streaming_unavailable']}")
    return 0
