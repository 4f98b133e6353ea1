"""A small ONNX graph builder: named nodes, weights as initialisers, and the int64 shape arithmetic that dynamic
time axes need (a padding that depends on the input's length is computed in the graph, not fixed at export).

Built with `onnx.helper` directly rather than through `torch.onnx.export`: the layers of a SEANet are few and
plain, and writing each as the ONNX operators it means (Pad, Conv, ConvTranspose, Elu, LSTM, MatMul, ArgMax,
Gather) keeps the graph free of the CPU fast paths of `audiocodec.modules` (tiles, channels-last views, the
`exp`-based ELU), which a tracer would record, and of exporter-version quirks.
"""

from __future__ import annotations

import numpy as np

INT64_MAX = np.iinfo(np.int64).max


class Graph:
    """Nodes and initialisers of one ONNX graph; every method returns the name of the value it creates.
    `prefix` starts every name, so that a subgraph's names (a Loop's body) never shadow its parent's."""

    def __init__(self, prefix: str = "") -> None:
        self.nodes: list = []
        self.initializers: list = []
        self.prefix = prefix
        self._count = 0
        self._constants: dict[tuple, str] = {}

    def fresh(self, prefix: str) -> str:
        self._count += 1
        return f"{self.prefix}{prefix}_{self._count}"

    def weight(self, array: np.ndarray, prefix: str = "w") -> str:
        """An initialiser holding `array` (float32 unless it is an integer array)."""
        from onnx import numpy_helper

        array = np.ascontiguousarray(array)
        if array.dtype.kind == "f":
            array = array.astype(np.float32)
        name = self.fresh(prefix)
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def constant(self, array: np.ndarray) -> str:
        """An initialiser holding `array` as is (any dtype, scalars too), shared between uses."""
        key = (array.dtype.str, array.shape, array.tobytes())
        if key not in self._constants:
            from onnx import numpy_helper

            self._constants[key] = self.fresh("k")
            self.initializers.append(numpy_helper.from_array(array, self._constants[key]))
        return self._constants[key]

    def ints(self, *values: int) -> str:
        """A 1-D int64 constant (shared between uses)."""
        key = ("i64",) + tuple(int(v) for v in values)
        if key not in self._constants:
            self._constants[key] = self.weight(np.array(values, dtype=np.int64), "k")
        return self._constants[key]

    def floats(self, *values: float) -> str:
        key = ("f32",) + tuple(float(v) for v in values)
        if key not in self._constants:
            self._constants[key] = self.weight(np.array(values, dtype=np.float32), "k")
        return self._constants[key]

    def op(self, op_type: str, inputs: list[str], outputs: int | list[str] = 1, **attrs) -> str | list[str]:
        from onnx import helper

        names = [self.fresh(op_type) for _ in range(outputs)] if isinstance(outputs, int) else list(outputs)
        self.nodes.append(helper.make_node(op_type, inputs, names, **attrs))
        return names[0] if len(names) == 1 else names

    # -- int64 arithmetic on [1]-shaped values ------------------------------------------------------------------
    def length(self, x: str, axis: int = -1) -> str:
        """The size `[1]` of `x` along `axis` (as int64)."""
        return self.op("Shape", [x], start=axis, end=axis + 1 if axis != -1 else INT64_MAX)

    def add(self, a: str, b: str) -> str:
        return self.op("Add", [a, b])

    def sub(self, a: str, b: str) -> str:
        return self.op("Sub", [a, b])

    def mul(self, a: str, b: str) -> str:
        return self.op("Mul", [a, b])

    def floordiv(self, a: str, b: int) -> str:
        """`a // b` for int64 `a >= 0` (ONNX's integer Div truncates, which is floor for non-negative values)."""
        return self.op("Div", [a, self.ints(b)])

    def maximum(self, a: str, b: str) -> str:
        return self.op("Max", [a, b])

    def minimum(self, a: str, b: str) -> str:
        return self.op("Min", [a, b])

    def slice(self, x: str, start: str | int, end: str | int, axis: int = -1) -> str:
        start = self.ints(start) if isinstance(start, int) else start
        end = self.ints(end) if isinstance(end, int) else end
        return self.op("Slice", [x, start, end, self.ints(axis)])

    def concat(self, parts: list[str], axis: int = -1) -> str:
        return parts[0] if len(parts) == 1 else self.op("Concat", parts, axis=axis)
