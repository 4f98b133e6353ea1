"""EMACodebook at inference: what it keeps between calls."""

import torch

from audiocodec.quantization.codebook import EMACodebook


def test_kept_code_norms_follow_every_change_of_the_codebook():
    """Inference keeps the codes' squared norms between calls; a codebook changed in place, replaced, or cast
    must not be scored with stale ones."""
    from audiocodec.quantization.nearest import negative_distances

    torch.manual_seed(0)
    codebook = EMACodebook(dimension=4, bins=8)
    codebook.embedding.normal_()
    x = torch.randn(50, 4)

    def expected():
        return negative_distances(x, codebook.embedding).max(dim=-1).indices

    with torch.no_grad():
        first = codebook.encode(x)
        assert torch.equal(first, expected())
        codebook.embedding.copy_(torch.randn(8, 4))  # in place, as the EMA and load_state_dict do
        assert torch.equal(codebook.encode(x), expected()) and not torch.equal(codebook.encode(x), first)
        replacement = torch.randn(8, 4)  # replaced, as .to() does, by a tensor at the same version
        while replacement._version < codebook.embedding._version:
            replacement.add_(0)
        codebook.embedding = replacement
        assert torch.equal(codebook.encode(x), expected())
    with torch.inference_mode():
        assert torch.equal(codebook.encode(x), expected())
