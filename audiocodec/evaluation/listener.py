"""Metrics that model listeners: ViSQOL (intrusive: reference against decoded) and DNSMOS P.835 (non-intrusive).

PESQ-wb, STOI and SI-SDR reward the right waveform; a codec that restores the upper bands with plausible but
different detail (what a discriminator teaches) loses on them while listeners may prefer it. These two metrics were
trained on listeners' ratings instead, and the codec literature reports them beside PESQ (ViSQOL in EnCodec's and
SoundStream's papers, DNSMOS for speech enhancement and codecs).

- ViSQOL v3 (Chinen et al., QoMEX 2020), through `visqol-python`, a port of Google's C++ ViSQOL whose README lists
  its conformance with the C++ v3.3.3 results. Speech mode (16 kHz, voice-activity patches, the C++ default's
  deep-lattice mapper, which needs `ai-edge-litert`) for speech; audio mode (48 kHz, the bundled SVR model) for music
  and sounds. MOS-LQO from 1 to 5; an identical signal scores at the top: about 4.73 in audio mode (the README's
  `castanets_identity`: 4.7321), about 4.5 in speech mode with the lattice mapper.
- DNSMOS P.835 (Reddy et al., ICASSP 2022): SIG (speech signal quality), BAK (background noise) and OVRL
  (overall), each a MOS from 1 to 5, predicted from the audio alone, so it can score the original as well as every
  decoded version: the difference is what the codec costs. The ONNX model (`dnsmos_models/sig_bak_ovr.onnx`) is the
  one `speechmos` ships; it is run here with onnxruntime as Microsoft's `dnsmos_local.py` and speechmos run it
  (9.01 s windows a second apart, a clip shorter than that repeated to fill one, the raw outputs mapped by the
  same polynomials), without speechmos's module, whose import needs librosa for the P.808 model this does not use.

Both return None ("n/a") where they cannot measure: a silent reference, audio too short, a failure inside the
metric (ViSQOL's voice-activity detection finds no speech), or a value that is not finite.
"""

from __future__ import annotations

import math
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from ..io.audio import resample

VISQOL_RATES = {"speech": 16000, "audio": 48000}
#: Shortest reference ViSQOL is run on. Below it audio mode fails outright (0.9 s of the bundled sample), speech
#: mode below about 0.6 s, and between the two speech mode scores an identical 0.7 s clip 4.24 instead of 4.5.
VISQOL_MIN_SECONDS = 1.0
DNSMOS_RATE = 16000
DNSMOS_WINDOW_SECONDS = 9.01
#: Shortest clip DNSMOS is run on: shorter ones are repeated to fill its 9 s window, which a few words survive
#: but a syllable does not.
DNSMOS_MIN_SECONDS = 1.0
DNSMOS_FIELDS = ("sig", "bak", "ovrl")
#: The polynomials that map the P.835 network's raw outputs to MOS (dnsmos_local.py, non-personalised model).
_DNSMOS_POLYNOMIALS = {"sig": (-0.08397278, 1.22083953, 0.0052439), "bak": (-0.13166888, 1.60915514, -0.39604546),
                       "ovrl": (-0.06766283, 1.11546468, 0.04602535)}
INSTALL_HINT = "pip install 'audiocodec[eval]'"


class ListenerMetricUnavailable(RuntimeError):
    """A listener metric's package or model file is missing; `cli` turns it into a one-line EvaluationError."""


def check_available(names: tuple[str, ...]) -> None:
    """Raise ListenerMetricUnavailable naming what is missing for the metrics in `names` ("visqol", "dnsmos")."""
    from importlib.util import find_spec

    missing = []
    if "visqol" in names:
        missing += [f"{name} (for ViSQOL)" for name in ("visqol", "numba", "ai_edge_litert") if find_spec(name) is None]
    if "dnsmos" in names:
        missing += [f"{name} (for DNSMOS)" for name in ("onnxruntime",) if find_spec(name) is None]
        if find_spec("speechmos") is None:
            missing.append("speechmos (for DNSMOS)")
        elif not dnsmos_model_path().is_file():
            missing.append(f"speechmos's model file {dnsmos_model_path()}")
    if missing:
        raise ListenerMetricUnavailable(f"missing {', '.join(missing)}: {INSTALL_HINT}")


@lru_cache(maxsize=None)
def _visqol_api(mode: str):
    # The lattice mapper is what C++ ViSQOL uses by default in speech mode; asked for explicitly so that a missing
    # runtime is an error instead of the polynomial fallback, which the port's README says over-predicts by 1-2.
    from visqol import VisqolApi

    api = VisqolApi()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        api.create(mode=mode, **({"use_lattice_model": True} if mode == "speech" else {}))
    return api


def visqol_mode(speech: bool) -> str:
    """ViSQOL's speech mode for speech, its audio mode for everything else."""
    return "speech" if speech else "audio"


def visqol(reference: torch.Tensor, decoded: torch.Tensor, sample_rate: int, mode: str) -> float | None:
    """ViSQOL MOS-LQO (1 to 5) of aligned mono signals `[T]` in `mode` ("speech" or "audio"), or None (n/a)."""
    if mode not in VISQOL_RATES:
        raise ValueError(f"ViSQOL mode must be one of {tuple(VISQOL_RATES)}, got {mode!r}")
    if reference.shape != decoded.shape or reference.dim() != 1:
        raise ValueError(f"ViSQOL takes mono signals [T] of one shape, got {tuple(reference.shape)} and "
                         f"{tuple(decoded.shape)}")
    if not reference.abs().max() > 0 or reference.shape[-1] < VISQOL_MIN_SECONDS * sample_rate:
        return None
    rate = VISQOL_RATES[mode]
    ref, deg = (resample(x.double(), sample_rate, rate).numpy() for x in (reference, decoded))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = float(_visqol_api(mode).measure_from_arrays(ref, deg, sample_rate=rate).moslqo)
    except (ValueError, IndexError, ZeroDivisionError, FloatingPointError):  # e.g. no speech found by its VAD
        return None
    return value if math.isfinite(value) else None


def dnsmos_model_path() -> Path:
    """Where speechmos's wheel puts the DNSMOS P.835 model, found without importing speechmos (see the docstring)."""
    from importlib.util import find_spec

    spec = find_spec("speechmos")
    folder = Path(next(iter(spec.submodule_search_locations))) if spec and spec.submodule_search_locations else Path()
    return folder / "dnsmos_models" / "sig_bak_ovr.onnx"


@lru_cache(maxsize=None)
def _dnsmos_session():
    import onnxruntime as ort

    options = ort.SessionOptions()
    # As many threads as PyTorch is given (onnxruntime would otherwise take every core of a shared machine).
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(dnsmos_model_path()), options, providers=["CPUExecutionProvider"])


def dnsmos(audio: torch.Tensor, sample_rate: int) -> dict[str, float | None]:
    """DNSMOS P.835 of a mono signal `[T]`: {"sig", "bak", "ovrl"}, each a MOS from 1 to 5, or None (n/a).

    The audio is resampled to 16 kHz and clipped to [-1, 1] (what a 16-bit file given to the reference script holds).
    """
    if audio.dim() != 1:
        raise ValueError(f"DNSMOS takes a mono signal [T], got shape {tuple(audio.shape)}")
    none = dict.fromkeys(DNSMOS_FIELDS)
    if not audio.abs().max() > 0 or audio.shape[-1] < DNSMOS_MIN_SECONDS * sample_rate:
        return none
    x = resample(audio.float(), sample_rate, DNSMOS_RATE).clamp(-1, 1).numpy().astype(np.float32)
    window = int(DNSMOS_WINDOW_SECONDS * DNSMOS_RATE)
    while x.shape[-1] < window:
        x = np.concatenate([x, x])
    hops = int(np.floor(x.shape[-1] / DNSMOS_RATE) - DNSMOS_WINDOW_SECONDS) + 1
    session = _dnsmos_session()
    scores = []
    for hop in range(hops):
        segment = x[hop * DNSMOS_RATE : hop * DNSMOS_RATE + window]
        if segment.shape[-1] < window:
            continue
        raw = session.run(None, {"input_1": segment[np.newaxis, :]})[0][0]
        scores.append([float(np.polyval(_DNSMOS_POLYNOMIALS[name], value)) for name, value in zip(DNSMOS_FIELDS, raw)])
    if not scores:
        return none
    means = np.mean(scores, axis=0)
    return {name: float(value) if math.isfinite(value) else None for name, value in zip(DNSMOS_FIELDS, means)}
