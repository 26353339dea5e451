"""L2 flush between CUDA samples, so each sample starts with a cold cache (as triton, nvbench)."""

from __future__ import annotations

from typing import Any

FALLBACK_L2_BYTES = 256 * 1024 * 1024


class L2Flusher:
    """Overwrites a buffer twice the size of the device's L2 cache (size from its properties)."""

    def __init__(self, device: Any = None) -> None:
        import torch

        dev = torch.device("cuda" if device is None else device)
        props = torch.cuda.get_device_properties(dev)
        l2 = int(getattr(props, "L2_cache_size", 0)) or FALLBACK_L2_BYTES
        self.nbytes = 2 * l2
        self._buffer = torch.empty(self.nbytes // 4, dtype=torch.int32, device=dev)

    def __call__(self) -> None:
        self._buffer.zero_()
