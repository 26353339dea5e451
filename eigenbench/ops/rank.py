"""Average ranks and Spearman's ρ in torch, exact with ties, one sort per vector.

`rankdata` matches `scipy.stats.rankdata(method="average")` (1-based, float64, a row holding a
NaN ranks as all NaN) and `spearman` matches `scipy.stats.spearmanr(...).statistic` (Pearson
correlation of the average ranks in float64; NaN for constant or NaN-holding input), batched
along every dimension but `dim`.

How it runs: the values are sorted once (with their indices), tie groups are found from equal
neighbours in the sorted order, each element gets its group's average position, and an
inverse permutation by scatter puts the ranks back in input order. On the CPU, floats are first
mapped to integer keys of the same order and equality (sign-magnitude to two's complement, so
-0.0 and +0.0 tie), because torch sorts long 1-D integer tensors with a parallel radix sort about
3x faster than floats; the tie bookkeeping runs in NumPy on the host, and with few ties only
the tied elements are rewritten after the scatter. Buffers are reused between rows and
between x and y, since fresh 10⁷-element buffers cost page faults. On CUDA the tie groups come
from fixed-shape ops only (a cumsum, a scatter and gathers, never cummax, whose CUDA kernel
runs one block per row), so nothing synchronises the host.

`spearman_naive` keeps the seed's version (ordinal ranks by a double argsort, float32
correlation) as a measured baseline; it is wrong whenever there are ties.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["rankdata", "spearman", "spearman_naive"]

# torch's CPU sort takes its radix path only for 1-D integer tensors of at least this size
# (at::internal::GRAIN_SIZE); longer rows are therefore sorted one at a time.
_RADIX_MIN = 32768

_SIGN_MASK = {torch.int32: 0x7FFF_FFFF, torch.int64: 0x7FFF_FFFF_FFFF_FFFF}
_FLOAT_BITS = {torch.float32: torch.int32, torch.float64: torch.int64}


def _check_tensor(x: object, name: str, where: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{where}: {name} must be a torch.Tensor, got {type(x).__name__}")
    if x.is_complex():
        raise TypeError(f"{where}: {name} must be real, got {x.dtype}")
    if x.dtype == torch.uint64:
        raise TypeError(f"{where}: {name} has dtype uint64, which torch cannot sort")
    if x.ndim == 0:
        raise ValueError(f"{where}: {name} must have at least one dimension, got a 0-d tensor")
    return x.detach()


def _check_dim(dim: int, ndim: int, where: str, shape: tuple[int, ...]) -> int:
    if not -ndim <= dim < ndim:
        raise ValueError(f"{where}: dim {dim} is out of range for shape {shape}")
    return dim % ndim


def _rows(x: torch.Tensor, dim: int) -> torch.Tensor:
    """View `x` as contiguous (rows, n) with `dim` last."""
    moved = x.movedim(dim, -1)
    return moved.reshape(-1, moved.shape[-1]).contiguous()


def _buffer(
    ws: dict[str, torch.Tensor], name: str, shape: tuple[int, ...], dtype: torch.dtype
) -> torch.Tensor:
    """A scratch tensor kept in `ws` for reuse (a fresh 10⁷-element buffer costs page faults)."""
    key = f"{name}:{dtype}"
    buf = ws.get(key)
    if buf is None or tuple(buf.shape) != shape:
        buf = ws[key] = torch.empty(shape, dtype=dtype)
    return buf


def _cpu_keys(rows: torch.Tensor, ws: dict[str, torch.Tensor]) -> torch.Tensor:
    """Integer keys with the order and equality of `rows` (NaN keys are arbitrary)."""
    if rows.dtype in (torch.float16, torch.bfloat16):
        rows = rows.float()  # exact
    if rows.dtype in _FLOAT_BITS:
        bits = rows.view(_FLOAT_BITS[rows.dtype])
        shape = tuple(bits.shape)
        sign = _buffer(ws, "sign", shape, bits.dtype)
        key = _buffer(ws, "key", shape, bits.dtype)
        torch.bitwise_right_shift(bits, bits.element_size() * 8 - 1, out=sign)  # 0 or -1
        torch.bitwise_and(bits, _SIGN_MASK[bits.dtype], out=key)  # magnitude
        return key.bitwise_xor_(sign).sub_(sign)  # negated where the sign bit is set
    if rows.dtype in (torch.int32, torch.int64):
        return rows
    if rows.dtype in (torch.uint16, torch.uint32):
        return rows.to(torch.int64)
    return rows.to(torch.int32)  # bool, int8, uint8, int16


def _sort_rows(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted keys (same order and ties as the values) and source indices, row by row."""
    keys = rows
    if rows.device.type == "cpu":
        keys = _cpu_keys(rows, {})
    elif rows.dtype == torch.bool:
        keys = rows.to(torch.uint8)
    elif rows.dtype in (torch.uint16, torch.uint32):
        keys = rows.to(torch.int64)
    if keys.shape[0] == 1:
        values, indices = torch.sort(keys[0])
        return values.unsqueeze(0), indices.unsqueeze(0)
    return torch.sort(keys, dim=1)


def _sorted_ranks_dense(s: torch.Tensor, offset: float) -> torch.Tensor:
    """Average 0-based position + `offset` of each sorted element, with fixed shapes only.

    Group ids come from a cumsum of "differs from the left neighbour"; each group's first
    position is scattered into a table (non-starting elements write to private dummy slots,
    so no two writes collide), and the next group's start bounds the group on the right.
    """
    b, n = s.shape
    total = b * n
    dev = s.device
    new = torch.ones((b, n), dtype=torch.bool, device=dev)
    torch.ne(s[:, 1:], s[:, :-1], out=new[:, 1:])
    new = new.view(-1)
    gid = torch.cumsum(new, 0).sub_(1)  # int64; one 1-D scan (CUB on CUDA)
    pos = torch.arange(total, device=dev)
    table = torch.empty(2 * total + 1, dtype=torch.int64, device=dev)
    table[: total + 1] = total  # entry past the last group start bounds the last group
    table.scatter_(0, torch.where(new, gid, pos + (total + 1)), pos)
    lo = table.index_select(0, gid)  # first position of the group
    hi = table[1:].index_select(0, gid)  # one past its last position
    row_start = pos.sub_(pos.remainder(n))
    twice = lo.add_(hi).sub_(1).sub_(row_start.mul_(2))  # 2 × average 0-based position
    return twice.double().mul_(0.5).add_(offset).view(b, n)


def _cpu_place(
    s: torch.Tensor, idx: torch.Tensor, out: torch.Tensor, base: torch.Tensor, offset: float
) -> None:
    """Write average ranks (position + `offset`) of sorted CPU rows `s` into `out`, input order.

    Tie bookkeeping runs in NumPy on the host (single-threaded, no per-op thread wake-ups).
    Without ties this is one scatter of `base` (= arange + offset); with few ties the tied
    elements are then overwritten, at a cost proportional to their number; with many ties the
    per-group averages are expanded and scattered once.
    """
    b, n = s.shape
    total = b * n
    flat = s.numpy().reshape(-1)
    eq = np.equal(flat[1:], flat[:-1])  # eq[q]: sorted elements q and q+1 tie
    if b > 1:
        eq[n - 1 :: n] = False  # never across rows
    links = np.flatnonzero(eq)
    if links.size > total // 4:  # many ties: expand group averages
        new = np.empty(total, dtype=bool)
        new[0] = True
        np.logical_not(eq, out=new[1:])
        starts = np.flatnonzero(new)
        counts = np.diff(starts, append=total)
        avg = (starts % n) + 0.5 * (counts - 1) + offset
        _scatter(out, idx, torch.from_numpy(np.repeat(avg, counts).reshape(b, n)))
        return
    _scatter(out, idx, base.expand(b, n))
    if links.size == 0:
        return
    brk = np.empty(links.size, dtype=bool)  # first link of each tie group
    brk[0] = True
    np.not_equal(links[1:], links[:-1] + 1, out=brk[1:])
    group = np.flatnonzero(brk)
    first = links[group]  # flat positions of each group's first and last element
    last = links[np.append(group[1:], links.size) - 1] + 1
    row = first - first % n
    avg = np.repeat((first + last - 2 * row) * 0.5 + offset, np.diff(group, append=links.size))
    row = links - links % n
    dest = out.numpy().reshape(-1)
    src = idx.numpy().reshape(-1)
    dest[src[links] + row] = avg
    dest[src[links + 1] + row] = avg


def _scatter(out: torch.Tensor, idx: torch.Tensor, src: torch.Tensor) -> None:
    """out[r, idx[r, j]] = src[r, j]; NumPy's fancy assignment is the faster one for one row."""
    if out.shape[0] == 1:
        out.numpy()[0, idx.numpy()[0]] = src.numpy()[0]
    else:
        out.scatter_(1, idx, src)


def _cpu_ranks_into(
    rows: torch.Tensor,
    out: torch.Tensor,
    base: torch.Tensor,
    offset: float,
    ws: dict[str, torch.Tensor],
) -> None:
    """Average ranks (position + `offset`) of CPU rows (b, n) into `out`; buffers from `ws`."""
    b, n = rows.shape
    if b > 1 and n < _RADIX_MIN:  # short rows: one batched sort
        s, idx = torch.sort(_cpu_keys(rows, {}), dim=1)
        _cpu_place(s, idx, out, base, offset)
        return
    for i in range(b):  # long rows: 1-D sorts take torch's parallel radix path
        key = _cpu_keys(rows[i], ws)
        s = _buffer(ws, "sorted", (n,), key.dtype)
        idx = _buffer(ws, "index", (n,), torch.int64)
        torch.sort(key, out=(s, idx))
        _cpu_place(s.view(1, n), idx.view(1, n), out[i].view(1, n), base, offset)


def _ranks_rows(rows: torch.Tensor, offset: float, sync_free: bool | None = None) -> torch.Tensor:
    """Average 0-based rank + `offset` per row of (rows, n), float64, in input order (no NaN care).

    `sync_free` (default: on CUDA) selects the fixed-shape path; tests force it on the CPU.
    """
    if sync_free is None:
        sync_free = rows.device.type != "cpu"
    out = torch.empty(rows.shape, dtype=torch.float64, device=rows.device)
    if sync_free:
        s, idx = _sort_rows(rows)
        out.scatter_(1, idx, _sorted_ranks_dense(s, offset))
    else:
        base = torch.arange(rows.shape[1], dtype=torch.float64).add_(offset)
        _cpu_ranks_into(rows, out, base, offset, {})
    return out


def _nan_rows(rows: torch.Tensor) -> torch.Tensor | None:
    if not rows.is_floating_point():
        return None
    return torch.isnan(rows).any(dim=1)


def rankdata(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Average ranks (1-based, ties averaged) along `dim` as float64, like SciPy's rankdata.

    Rows holding a NaN give all-NaN ranks (SciPy's default nan_policy="propagate").
    """
    x = _check_tensor(x, "x", "rankdata")
    d = _check_dim(dim, x.ndim, "rankdata", tuple(x.shape))
    if x.numel() == 0:
        return torch.empty(x.shape, dtype=torch.float64, device=x.device)
    rows = _rows(x, d)
    ranks = _ranks_rows(rows, 1.0)
    nan = _nan_rows(rows)
    if nan is not None:
        ranks.masked_fill_(nan.unsqueeze(1), float("nan"))
    moved_shape = x.movedim(d, -1).shape
    return ranks.view(moved_shape).movedim(-1, d)


def _check_pair(
    x: object, y: object, dim: int, where: str
) -> tuple[torch.Tensor, torch.Tensor, int]:
    x = _check_tensor(x, "x", where)
    y = _check_tensor(y, "y", where)
    if x.shape != y.shape:
        raise ValueError(
            f"{where}: x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    if x.device != y.device:
        raise ValueError(
            f"{where}: x and y must be on the same device, got {x.device} and {y.device}"
        )
    d = _check_dim(dim, x.ndim, where, tuple(x.shape))
    if x.shape[d] < 2:
        raise ValueError(
            f"{where}: need at least 2 points along dim {dim}, got shape {tuple(x.shape)}"
        )
    return x, y, d


def _pearson_centred(rx: torch.Tensor, ry: torch.Tensor, buf: torch.Tensor) -> torch.Tensor:
    """Row-wise Σxy / sqrt(Σx² Σy²) of centred rows (float64, cascade sums; 0/0 gives NaN).

    Products go through `buf` rather than torch.dot, whose float64 sums at 10⁶ points were
    off by ~1e-12 relative; torch.sum's cascade summation is exact to a few ulp.
    """
    sxy = torch.mul(rx, ry, out=buf).sum(dim=1)
    sxx = torch.mul(rx, rx, out=buf).sum(dim=1)
    syy = torch.mul(ry, ry, out=buf).sum(dim=1)
    return sxy.div_(sxx.mul_(syy).sqrt_()).clamp_(-1.0, 1.0)


def spearman(x: torch.Tensor, y: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Spearman's ρ of x and y along `dim` (float64, batched over the other dims), like SciPy.

    Constant input gives NaN; input holding a NaN gives NaN. No host synchronisation on CUDA.
    """
    x, y, d = _check_pair(x, y, dim, "spearman")
    batch_shape = x.movedim(d, -1).shape[:-1]
    if x.numel() == 0:
        return torch.empty(batch_shape, dtype=torch.float64, device=x.device)
    xr, yr = _rows(x, d), _rows(y, d)
    rho = _spearman_rows(xr, yr, sync_free=xr.device.type != "cpu")
    for nan in (_nan_rows(xr), _nan_rows(yr)):
        if nan is not None:
            rho.masked_fill_(nan, float("nan"))
    return rho.view(batch_shape)


def _spearman_rows(xr: torch.Tensor, yr: torch.Tensor, sync_free: bool) -> torch.Tensor:
    """ρ per row of (b, n) x and y, NaN not handled; ranks are centred on their mean (n+1)/2."""
    b, n = xr.shape
    centre = -(n - 1) / 2  # 0-based position minus (n-1)/2: exact half-integers
    if sync_free:
        rx = _ranks_rows(xr, centre, sync_free=True)
        ry = _ranks_rows(yr, centre, sync_free=True)
        return _pearson_centred(rx, ry, torch.empty_like(rx))
    rx = torch.empty((b, n), dtype=torch.float64)
    ry = torch.empty((b, n), dtype=torch.float64)
    base = torch.arange(n, dtype=torch.float64).add_(centre)
    ws: dict[str, torch.Tensor] = {}  # scratch shared by x and y
    _cpu_ranks_into(xr, rx, base, centre, ws)
    _cpu_ranks_into(yr, ry, base, centre, ws)
    ws.clear()
    buf = base.view(1, n) if b == 1 else torch.empty_like(rx)
    return _pearson_centred(rx, ry, buf)


def spearman_naive(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The seed's baseline: ordinal ranks by double argsort, float32 Pearson (wrong with ties)."""
    x, y, _ = _check_pair(x, y, 0, "spearman_naive")
    if x.ndim != 1:
        raise ValueError(f"spearman_naive: expects 1-D x and y, got shape {tuple(x.shape)}")
    rx = x.argsort().argsort().to(torch.float32)
    ry = y.argsort().argsort().to(torch.float32)
    return torch.corrcoef(torch.stack([rx, ry]))[0, 1]
