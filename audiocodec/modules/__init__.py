"""SEANet building blocks: padded and causal convolutions, the LSTM block, the encoder and the decoder."""

from .conv import PaddedConv1d, PaddedConvTranspose1d, fold_weight_norm
from .lstm import ConvLSTM
from .seanet import ResidualUnit, SEANetDecoder, SEANetEncoder

__all__ = [
    "ConvLSTM",
    "PaddedConv1d",
    "PaddedConvTranspose1d",
    "ResidualUnit",
    "SEANetDecoder",
    "SEANetEncoder",
    "fold_weight_norm",
]
