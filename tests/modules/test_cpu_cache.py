"""Cache sizes read from Linux's sysfs size the time tiles; without them the sizes first measured are kept."""

import pytest

from audiocodec.modules import cpu_cache


def _fake_sysfs(root, caches):
    for index, (level, kind, size) in enumerate(caches):
        folder = root / f"index{index}"
        folder.mkdir()
        (folder / "level").write_text(f"{level}\n")
        (folder / "type").write_text(f"{kind}\n")
        (folder / "size").write_text(f"{size}\n")


@pytest.fixture
def sysfs(tmp_path, monkeypatch):
    monkeypatch.setattr(cpu_cache, "CACHE_DIR", tmp_path)
    cpu_cache._caches.cache_clear()
    yield tmp_path
    cpu_cache._caches.cache_clear()


def test_sizes_are_read_per_level_without_the_instruction_cache(sysfs):
    _fake_sysfs(sysfs, [(1, "Data", "32K"), (1, "Instruction", "32K"), (2, "Unified", "512K"),
                        (3, "Unified", "32768K")])
    assert cpu_cache.cache_sizes() == {"L1d": 32 << 10, "L2": 512 << 10, "L3": 32 << 20}
    assert cpu_cache.l2_bytes() == 512 << 10
    assert "L2 512 KiB, L3 32 MiB" in cpu_cache.describe()


def test_no_sysfs_or_a_nonsense_size_falls_back_to_the_measured_default(sysfs):
    assert cpu_cache.cache_sizes() == {} and cpu_cache.l2_bytes() == cpu_cache.FALLBACK_L2_BYTES
    assert "not reported" in cpu_cache.describe()
    cpu_cache._caches.cache_clear()
    _fake_sysfs(sysfs, [(2, "Unified", "garbage"), (3, "Unified", "1K")])
    assert cpu_cache.l2_bytes() == cpu_cache.FALLBACK_L2_BYTES


def test_tiles_fill_l2_and_the_cores_share_of_l3_in_powers_of_two(sysfs):
    _fake_sysfs(sysfs, [(2, "Unified", "512K"), (3, "Unified", "32768K")])
    (sysfs / "index1" / "shared_cpu_list").write_text("0-1\n")  # 16 MiB a core
    assert cpu_cache.tile_bytes() == (16 << 20) + (512 << 10)
    assert cpu_cache.elements_in(cpu_cache.tile_bytes()) == 1 << 22
    cpu_cache._caches.cache_clear()
    (sysfs / "index1" / "shared_cpu_list").write_text("0-7,64-71\n")  # 2 MiB a core
    assert cpu_cache.tile_bytes() == (2 << 20) + (512 << 10)
    assert cpu_cache.elements_in(3 << 20) == 1 << 19 and cpu_cache.elements_in(1) == 1024
