"""SEANet building blocks: padded and causal convolutions, the LSTM block, the encoder and the decoder."""

from .conv import PaddedConv1d, PaddedConvTranspose1d, fold_weight_norm
from .lstm import ConvLSTM, LayerwiseLSTM
from .seanet import ResidualUnit, SEANetDecoder, SEANetEncoder

__all__ = [
    "ConvLSTM",
    "LayerwiseLSTM",
    "PaddedConv1d",
    "PaddedConvTranspose1d",
    "ResidualUnit",
    "SEANetDecoder",
    "SEANetEncoder",
    "fold_weight_norm",
]
