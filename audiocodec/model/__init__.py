"""The model: `Codec` (SEANet encoder, residual quantizer, SEANet decoder), its config, its persistence and identity,
and loading EnCodec's weights."""

from .codec import Codec, CodecConfig, EncodedAudio

__all__ = ["Codec", "CodecConfig", "EncodedAudio"]
