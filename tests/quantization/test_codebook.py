"""EMACodebook at inference: what it keeps between calls."""

import torch

from audiocodec.quantization.codebook import EMACodebook
from audiocodec.quantization.nearest import negative_distances


def test_kept_code_norms_follow_every_change_of_the_codebook():
    """Inference keeps the codes' squared norms between calls; a codebook changed in place, replaced, or cast
    must not be scored with stale ones."""
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


def test_copies_and_pickles_do_not_carry_kept_norms():
    """A copied codebook's version counter starts again, so norms kept for the original could match a changed copy."""
    import copy
    import io

    torch.manual_seed(0)
    original = EMACodebook(dimension=4, bins=8)
    original.embedding.normal_()
    x = torch.randn(50, 4)
    with torch.no_grad():
        original.embedding.mul_(2)
        original.encode(x)  # keeps the norms of the original at its version
        buffer = io.BytesIO()
        torch.save(original, buffer)
        for clone in (copy.deepcopy(original), torch.load(io.BytesIO(buffer.getvalue()), weights_only=False)):
            for _ in range(original.embedding._version - clone.embedding._version - 1):
                clone.embedding.add_(0)
            clone.embedding.copy_(torch.randn(8, 4))  # now at the version the original's norms were kept at
            expected = negative_distances(x, clone.embedding).max(dim=-1).indices
            assert torch.equal(clone.encode(x), expected)
