"""Shared test settings: deterministic seeds and a thread count that suits a 2-core CI machine
(AUDIOCODEC_TEST_THREADS overrides it, e.g. to 1 while a training run holds the other core)."""

import os
import random

import numpy as np
import pytest
import torch

torch.set_num_threads(int(os.environ.get("AUDIOCODEC_TEST_THREADS", "2")))


@pytest.fixture(autouse=True)
def _seed_everything():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield
