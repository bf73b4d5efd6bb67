"""The prefetch hint: emitted as LLVM's prefetch, and it changes no value."""
from __future__ import annotations

import numpy as np
from numba import njit

from installation.prefetch import prefetch


@njit(nogil=True)
def _sum_after_prefetch(a, idx):
    for j in idx:
        prefetch(a, j)
    s = 0.0
    for j in idx:
        s += a[j]
    return s


def test_prefetch_reaches_llvm_and_leaves_values_alone():
    a = np.arange(1 << 20, dtype=np.float32)
    before = a.copy()
    idx = np.array([0, 1, 12345, (1 << 20) - 1], np.int64)
    assert _sum_after_prefetch(a, idx) == float(a[idx].sum())
    assert np.array_equal(a, before)
    ir = _sum_after_prefetch.inspect_llvm(_sum_after_prefetch.signatures[0])
    assert "@llvm.prefetch" in ir
