"""Running a codec outside PyTorch: ONNX graphs (`onnx.py`) and a numpy + onnxruntime runner for them
(`runtime.py`, which imports no torch). Needs the `[onnx]` extra: `pip install 'audiocodec[onnx]'`."""
