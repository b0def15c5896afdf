"""Moving a batch's host-side numbers to the device without stalling it, and picking rows without
index tensors.

On a GPU, every ``.item()`` / ``.tolist()`` / ``bool(tensor)`` on a device tensor waits for the
whole queue of kernels, and so does every ordinary host-to-device copy from pageable memory
(``torch.tensor(..., device='cuda')``, ``t.to('cuda')``). The synthesis therefore decides
everything on the host and sends its per-sample numbers in ONE pinned, non-blocking copy per
batch; selecting the samples of a group uses slices and ``torch.cat`` (device-side work only),
never an index tensor built from a Python list (which would be such a copy).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def to_device_in_one_copy(
    tensors: Sequence[torch.Tensor], device: torch.device | str, dtype: torch.dtype = torch.float32
) -> list[torch.Tensor]:
    """Host tensors -> tensors of the same shapes and ``dtype`` on ``device``, in one copy.

    They are flattened into one buffer (pinned on CUDA) and copied with ``non_blocking=True``,
    so the host goes on queueing work instead of waiting for the GPU. On the CPU nothing moves.
    """
    device = torch.device(device)
    flat = [t.detach().reshape(-1).to('cpu', dtype) for t in tensors]
    if device.type == 'cpu':
        return [f.reshape(t.shape) for f, t in zip(flat, tensors)]
    buffer = torch.cat(flat) if flat else torch.empty(0, dtype=dtype)
    if device.type == 'cuda':
        buffer = buffer.pin_memory()  # a copy from pageable memory would block until the GPU is idle
    parts = torch.split(buffer.to(device, non_blocking=True), [f.numel() for f in flat])
    return [part.reshape(t.shape) for part, t in zip(parts, tensors)]


def take_rows(t: torch.Tensor, rows: Sequence[int]) -> torch.Tensor:
    """``t[rows]`` for a host list of row numbers, without an index tensor: a slice when the rows
    are consecutive (no copy), else one ``torch.cat`` of one-row slices."""
    first = rows[0]
    if list(rows) == list(range(first, first + len(rows))):
        return t[first : first + len(rows)]
    return torch.cat([t[r : r + 1] for r in rows])


def host_values(values: Sequence[float], device_values: torch.Tensor, rows: Sequence[int]) -> float | torch.Tensor:
    """Per-sample values of ``rows`` for a batched op: one Python number when they are all equal
    (a kernel argument, no device tensor at all), else the rows of their device copy."""
    picked = [values[r] for r in rows]
    if all(v == picked[0] for v in picked):
        return picked[0]
    return take_rows(device_values, rows)
