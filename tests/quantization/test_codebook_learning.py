"""Behaviour of EMA codebook learning, including one regression test per EnCodec defect (encodec issue #61)."""

import pytest
import torch
from encodec.quantization.core_vq import EuclideanCodebook

from audiocodec.errors import ConfigError
from audiocodec.quantization import EMACodebook, ResidualVectorQuantizer, distributed

from .helpers import cluster_stream, grid_centres


def _codes_used(encode, data: list[torch.Tensor], bins: int) -> float:
    codes = torch.cat([encode(x).reshape(-1) for x in data])
    return torch.unique(codes).numel() / bins


# -- defect 1: expiry overwritten by the EMA copy -----------------------------------------------------------
def test_replaced_code_keeps_its_replacement_through_later_ema_steps():
    book = EMACodebook(dimension=2, bins=4, decay=0.9, threshold=0.1, kmeans_init=False)
    data = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]).repeat(10, 1)
    with torch.no_grad():
        book.embedding_sum.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [50.0, 50.0]]))
        book.cluster_usage.fill_(1.0)
        book._derive_embedding()
        counts, sums = book.statistics(data, book.encode(data))
        book.ema_update(counts, sums)
        candidates = torch.tensor([[5.0, 5.0]])
        assert book.expire(candidates, torch.Generator().manual_seed(0)) == 1
        assert torch.allclose(book.embedding[3], candidates[0], rtol=1e-4)
        for _ in range(10):  # further training on data that never picks code 3
            counts, sums = book.statistics(data, book.encode(data))
            book.ema_update(counts, sums)
    assert torch.allclose(book.embedding[3], candidates[0], rtol=1e-3)


def test_encodec_order_loses_the_replacement():
    """The same scenario through the encodec package: expiry runs, then the EMA copy restores the dead code."""
    torch.manual_seed(0)
    book = EuclideanCodebook(dim=2, codebook_size=4, kmeans_init=False, decay=0.9, threshold_ema_dead_code=1)
    start = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [50.0, 50.0]])
    usage = torch.tensor([10.0, 10.0, 10.0, 0.5])  # code 3 is below the threshold: dead
    with torch.no_grad():
        book.embed.copy_(start)
        book.embed_avg.copy_(start * usage[:, None])
        book.cluster_size.copy_(usage)
    replacements = []
    original_replace = book.replace_
    book.replace_ = lambda samples, mask: (replacements.append(int(mask.sum())), original_replace(samples, mask))
    data = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]).repeat(10, 1)
    book.train()
    book(data)
    assert replacements == [1]  # expiry did pick code 3 ...
    assert torch.allclose(book.embed[3], start[3], rtol=1e-3)  # ... and the EMA copy put it back where it was


def _drift_run(train_step, encode, bins: int) -> float:
    """Clusters move far away after warm-up; returns the share of codes used on held-out moved data."""
    before = grid_centres(bins, 2, offset=0.0, seed=1)
    after = grid_centres(bins, 2, offset=30.0, seed=2)
    for x in cluster_stream(before, 10, 4, 50, seed=3) + cluster_stream(after, 40, 4, 50, seed=4):
        train_step(x)
    return _codes_used(encode, cluster_stream(after, 4, 4, 50, seed=5), bins)


def test_dead_codes_after_drift_are_replaced_and_used_unlike_encodec():
    ours = ResidualVectorQuantizer(2, 1, 8, expire_every=5, kmeans_iters=20).train()
    used = _drift_run(ours, lambda x: ours.encode(x, 1), 8)
    assert used >= 7 / 8

    torch.manual_seed(0)
    reference = EuclideanCodebook(dim=2, codebook_size=8, kmeans_init=True, kmeans_iters=20).train()
    used_encodec = _drift_run(lambda x: reference(x.transpose(1, 2)), lambda x: reference.encode(x.transpose(1, 2)), 8)
    assert used_encodec <= 3 / 8


# -- defect 2: statistics of one rank only ------------------------------------------------------------------
def test_statistics_are_all_reduced_before_the_ema_update(monkeypatch):
    """Two simulated ranks holding the same batch must learn what one process learns from both copies."""
    def run(batches, mirrored: bool):
        q = ResidualVectorQuantizer(4, 2, 8, kmeans_factor=8, seed=3).train()  # ring holds both ranks' rows
        if mirrored:
            monkeypatch.setattr(distributed, "world_size", lambda: 2)
            # every sum doubles, except the ranks' row counts [N, 0], which the mirror rank fills in: [N, N]
            monkeypatch.setattr(distributed, "all_reduce_sum",
                                lambda ts: [2 * ts[0].double(), ts[1].double() + ts[1].double().roll(1)]
                                + [2 * t.double() for t in ts[2:]])
            monkeypatch.setattr(distributed, "all_gather_rows", lambda rows, counts: torch.cat([rows, rows]))
        for x in batches:
            q(x)
        monkeypatch.undo()
        return q

    batches = [torch.randn(2, 4, 16, generator=torch.Generator().manual_seed(i)) for i in range(6)]
    mirrored = run(batches, mirrored=True)
    # one process sees both ranks' copies: rows rank 0 then rank 1 for the ring, counts doubled
    single = run([torch.cat([x, x]) for x in batches], mirrored=False)
    for a, b in zip(mirrored.levels, single.levels):
        assert torch.allclose(a.cluster_usage, b.cluster_usage, atol=1e-5)
        assert torch.allclose(a.embedding_sum, b.embedding_sum, atol=1e-5)
    assert mirrored.levels[0].cluster_usage.sum() > 40  # about 2 x 32 rows per step, not 32


# -- defect 3: expiry judged on one batch, k-means fitted to one small batch ---------------------------------
def _windowed_book(expire_every: int) -> tuple[EMACodebook, int]:
    book = EMACodebook(dimension=1, bins=4, decay=0.9, threshold=0.1, kmeans_init=False)
    candidates = torch.tensor([[100.0]])
    replaced = 0
    for step in range(12):
        rare = 9.0 if step % 3 == 0 else 0.0  # code 3 is used regularly but not in every batch
        counts = torch.tensor([30.0, 30.0, 30.0, rare])
        book.ema_update(counts, counts[:, None] * torch.tensor([[0.0], [1.0], [2.0], [3.0]]))
        if (step + 1) % expire_every == 0:
            replaced += book.expire(candidates, torch.Generator().manual_seed(step))
    return book, replaced


def test_expiry_is_judged_over_the_window_not_one_batch():
    book, replaced = _windowed_book(expire_every=6)
    assert replaced == 0
    assert book.embedding[3].item() < 50  # never swapped for the candidate at 100
    _, replaced_per_batch = _windowed_book(expire_every=1)  # EnCodec-style judgement starves the rare code
    assert replaced_per_batch > 0


def _sparse_book(min_window_usage: float) -> int:
    """A level that receives two vectors per step (as quantizer dropout leaves the upper levels), spread
    evenly over its four codes in the long run, checked for expiry every other step; returns codes replaced."""
    book = EMACodebook(dimension=1, bins=4, decay=0.9, threshold=0.1, kmeans_init=False,
                       min_window_usage=min_window_usage)
    centres = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    book.initialize(centres.repeat(10, 1), iters=5, generator=torch.Generator().manual_seed(0), usage_per_step=2.0)
    replaced = 0
    for step in range(40):
        codes = torch.tensor([(2 * step) % 4, (2 * step + 1 + step // 4) % 4])
        counts, sums = book.statistics(centres[codes], codes)
        book.ema_update(counts, sums)
        if step % 2:
            replaced += book.expire(torch.tensor([[100.0]]), torch.Generator().manual_seed(step))
    return replaced


def test_a_level_starved_by_dropout_is_judged_only_once_its_window_is_full():
    assert _sparse_book(min_window_usage=0.0) > 0  # four vectors per window: most codes look dead
    assert _sparse_book(min_window_usage=3.0) == 0  # windows of twelve vectors: every code is seen


def test_dropout_draws_only_the_configured_level_counts():
    q = ResidualVectorQuantizer(4, 8, 8, kmeans_factor=2, quantizer_dropout=True, dropout_levels=[2, 8], seed=3)
    q.train()
    drawn = {q(torch.randn(2, 4, 16)).codes.shape[1] for _ in range(30)}
    assert drawn == {2, 8}


@pytest.mark.parametrize("levels", [[0], [9], [True]])
def test_dropout_levels_outside_the_quantizer_are_rejected(levels):
    with pytest.raises(ConfigError, match="dropout_levels"):
        ResidualVectorQuantizer(4, 8, 8, dropout_levels=levels)


def test_kmeans_waits_for_several_vectors_per_code_gathered_across_steps():
    q = ResidualVectorQuantizer(4, 2, 16, kmeans_factor=4).train()  # needs 64 vectors; a step brings 20
    for step in range(4):
        x = torch.randn(2, 4, 10)
        out = q(x)
        assert out.quantized is x and not out.codes.any()  # pass-through while gathering
        assert bool(q.levels[0].inited) == (step == 3)  # k-means once 80 >= 64 vectors were seen
    out = q(torch.randn(2, 4, 10))
    assert "q0/used" in out.metrics and out.codes.any()


def test_kmeans_usage_is_in_vectors_per_step_even_when_the_ring_takes_fewer():
    """The EMA adds every vector of a step; k-means' cluster sizes must start in that unit, not in the (at most
    `rows_per_step`) rows a step puts in the ring, or the first EMA steps overwrite them too fast."""
    q = ResidualVectorQuantizer(4, 1, 8, kmeans_factor=4, rows_per_step=16, expire_every=0,
                                quantizer_dropout=False).train()
    while not q.levels[0].is_initialized:
        q(torch.randn(4, 4, 16))  # 64 vectors a step, 16 of them into the ring
    assert float(q.levels[0].cluster_usage.sum()) == pytest.approx(64)


# -- training-step behaviour ---------------------------------------------------------------------------------
def _trained(**options) -> ResidualVectorQuantizer:
    q = ResidualVectorQuantizer(4, 3, 8, kmeans_factor=2, **options).train()
    for i in range(3):
        q(torch.randn(2, 4, 16, generator=torch.Generator().manual_seed(100 + i)))
    return q


def test_straight_through_gradient_and_commitment_loss():
    q = _trained()
    x = torch.randn(2, 4, 16, requires_grad=True)
    out = q(x)
    weight = torch.randn_like(x)
    (out.quantized * weight).sum().backward()
    assert torch.allclose(x.grad, weight)
    x.grad = None
    out = q(x)
    out.loss.backward()
    assert x.grad.abs().sum() > 0
    assert not torch.allclose(out.quantized, x)


def test_training_forward_quantizes_like_eval_with_the_pre_update_codebook():
    q = _trained(expire_every=0)
    x = torch.randn(2, 4, 16)
    before = q.encode(x)
    q.eval()
    expected = q.decode(before)
    q.train()
    out = q(x)
    assert torch.equal(out.codes, before)
    assert torch.allclose(out.quantized, expected, atol=1e-6)


def test_autocast_does_not_change_which_codes_are_nearest():
    """Training under bf16 autocast (the GPU recipes) must still pick the nearest codes: in bf16 the distances
    chose others for up to a tenth of the default model's vectors, and the EMA learnt from them."""
    generator = torch.Generator().manual_seed(3)
    q = ResidualVectorQuantizer(32, 4, 64, kmeans_factor=1, expire_every=0).train()
    for _ in range(4):
        q(torch.randn(8, 32, 64, generator=generator), n_q=4)
    x = torch.randn(8, 32, 64, generator=generator)
    nearest = q.encode(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(q.encode(x.bfloat16().float()), q.encode(x.bfloat16()))  # bf16 features: in float32
        assert torch.equal(q.encode(x), nearest)
        out = q(x, n_q=4)
    assert torch.equal(out.codes, nearest) and out.quantized.dtype == torch.float32


def test_resume_from_state_dict_continues_identically():
    options = dict(quantizer_dropout=True, expire_every=2, seed=7)
    batches = [torch.randn(2, 4, 16, generator=torch.Generator().manual_seed(i)) for i in range(10)]
    first = ResidualVectorQuantizer(4, 3, 8, kmeans_factor=2, **options).train()
    for x in batches[:5]:
        first(x)
    second = ResidualVectorQuantizer(4, 3, 8, kmeans_factor=2, **options).train()
    second.load_state_dict(first.state_dict())
    n_qs = set()
    for x in batches[5:]:
        a, b = first(x), second(x)
        assert torch.equal(a.codes, b.codes)
        n_qs.add(a.codes.shape[1])
    assert len(n_qs) > 1  # quantizer dropout did vary the number of levels
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert torch.equal(a, b), name


def test_non_finite_input_names_the_level_and_leaves_the_codebook_unchanged():
    q = _trained()
    before = {k: v.clone() for k, v in q.state_dict().items()}
    x = torch.randn(2, 4, 16)
    x[1, 2, 3] = float("nan")
    with pytest.raises(ValueError, match="level 0 received NaN or Inf"):
        q(x)
    for name, value in q.state_dict().items():
        assert torch.equal(value, before[name]), name
