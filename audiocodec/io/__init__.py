"""Audio in and out: reading, writing, resampling, loudness, atomic writes, manifests."""
