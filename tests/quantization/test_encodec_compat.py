"""Loaded EnCodec codebooks give EnCodec's codes and vectors bit for bit (the encodec package is the oracle)."""

import pytest
import torch
from encodec.quantization.vq import ResidualVectorQuantizer as EncodecRVQ
from hypothesis import given, settings
from hypothesis import strategies as st

from audiocodec.errors import ModelMismatchError
from audiocodec.quantization import ResidualVectorQuantizer


def _trained_encodec(dimension=16, n_q=4, bins=32):
    """An EnCodec quantizer whose codebooks went through k-means and a few EMA steps (realistic values)."""
    torch.manual_seed(1)
    reference = EncodecRVQ(dimension=dimension, n_q=n_q, bins=bins, kmeans_iters=5)
    reference.train()
    for _ in range(3):
        reference(torch.randn(2, dimension, 64), sample_rate=24000)
    return reference.eval()


def test_codes_and_decoded_vectors_are_bit_identical_to_encodec():
    reference = _trained_encodec()
    ours = ResidualVectorQuantizer(16, 4, 32)
    ours.load_encodec_state_dict(reference.state_dict())
    x = torch.randn(3, 16, 500) * 2.0
    for n_q in (1, 4):
        expected = reference.encode(x, 24000, bandwidth=n_q * 24000 * 5 / 1000).transpose(0, 1)
        codes = ours.encode(x, n_q)
        assert codes.shape == (3, n_q, 500)
        assert torch.equal(codes, expected)
        assert torch.equal(ours.decode(codes), reference.decode(expected.transpose(0, 1)))


def test_near_ties_resolve_like_encodec():
    """Inputs halfway between two codes: only the same float expression picks the same side every time."""
    reference = _trained_encodec(n_q=1)
    ours = ResidualVectorQuantizer(16, 1, 32)
    ours.load_encodec_state_dict(reference.state_dict())
    embed = reference.vq.layers[0]._codebook.embed
    a, b = embed[torch.arange(0, 32, 2)], embed[torch.arange(1, 32, 2)]
    mid = ((a + b) / 2 + 1e-7 * torch.randn_like(a)).t().unsqueeze(0)  # [1, D, 16]
    expected = reference.encode(mid, 24000).transpose(0, 1)
    assert torch.equal(ours.encode(mid, 1), expected)


def test_eval_forward_equals_decode_of_encode():
    reference = _trained_encodec()
    ours = ResidualVectorQuantizer(16, 4, 32).eval()
    ours.load_encodec_state_dict(reference.state_dict())
    x = torch.randn(2, 16, 40)
    out = ours(x)
    assert torch.equal(out.codes, ours.encode(x))
    assert torch.equal(out.quantized, ours.decode(out.codes))


def test_encodec_state_with_wrong_keys_or_shapes_is_refused_with_the_keys_named():
    state = _trained_encodec().state_dict()
    ours = ResidualVectorQuantizer(16, 3, 32)
    with pytest.raises(ModelMismatchError, match=r"unexpected keys: vq\.layers\.3\._codebook"):
        ours.load_encodec_state_dict(state)
    ours = ResidualVectorQuantizer(16, 5, 32)
    with pytest.raises(ModelMismatchError, match=r"missing keys: vq\.layers\.4\._codebook"):
        ours.load_encodec_state_dict(state)
    ours = ResidualVectorQuantizer(8, 4, 32)
    with pytest.raises(ModelMismatchError, match="embed has shape"):
        ours.load_encodec_state_dict(state)


def test_bad_inputs_are_clear_value_errors():
    q = ResidualVectorQuantizer(8, 2, 16).eval()
    with pytest.raises(ValueError, match=r"\[batch, 8, frames\]"):
        q.encode(torch.randn(2, 7, 5))
    with pytest.raises(ValueError, match="n_q"):
        q.encode(torch.randn(2, 8, 5), n_q=3)
    with pytest.raises(ValueError, match=r"codes must lie in \[0, 16\)"):
        q.decode(torch.full((1, 2, 3), 16))
    with pytest.raises(ValueError, match="levels <= 2"):
        q.decode(torch.zeros(1, 3, 3, dtype=torch.long))


@settings(max_examples=25, deadline=None)
@given(dimension=st.integers(1, 24), bins=st.sampled_from([2, 7, 64]), frames=st.integers(1, 40),
       scale=st.sampled_from([1e-3, 1.0, 1e3]), seed=st.integers(0, 2**16))
def test_any_codebook_and_input_give_encodec_codes(dimension, bins, frames, scale, seed):
    generator = torch.Generator().manual_seed(seed)
    reference = EncodecRVQ(dimension=dimension, n_q=2, bins=bins, kmeans_init=False).eval()
    with torch.no_grad():
        for layer in reference.vq.layers:
            layer._codebook.embed.copy_(scale * torch.randn(bins, dimension, generator=generator))
    ours = ResidualVectorQuantizer(dimension, 2, bins)
    ours.load_encodec_state_dict(reference.state_dict())
    x = scale * torch.randn(2, dimension, frames, generator=generator)
    expected = reference.encode(x, 24000).transpose(0, 1)
    assert torch.equal(ours.encode(x), expected)
