"""Zero-copy torch ↔ CuPy, CuPy's batched eigen-solvers, and a k-th eigenvalue with autograd.

Seed 002 found CuPy's batched `eigh`/`eigvalsh` (one `syevjBatched` call for the whole batch)
far faster than torch's on CUDA, and built a k-th eigenvalue autograd Function on it. This
module does the same with the current DLPack protocol:

- Tensors cross by `cupy.from_dlpack(t)` / `torch.from_dlpack(a)`: no copy, and the consumer
  tells the producer its stream (not the legacy `toDlpack`/`fromDlpack` capsules).
- CuPy work runs on torch's *current* CUDA stream (`cupy_on_torch_stream`), so it is ordered
  with the surrounding torch work and timed by CUDA events recorded on that stream.
- CuPy's batched solvers do not synchronise and do not check convergence (CuPy's default
  `linalg='ignore'`); only torch's do.

`KthEigenvalue` returns λ_k, the k-th *smallest* eigenvalue with **0-based** k (as the seed's
`ws[..., k]`; negative k counts from the largest, -1 = the largest). Its backward is
g · q_k q_kᵀ: the gradient of a simple eigenvalue, and an element of the Clarke subdifferential
at a repeated one. Matrices are read through one triangle (`uplo`, default "L", as
`torch.linalg.eigvalsh`); q_k q_kᵀ is symmetric and is what torch's eigvalsh backward returns
too, so for non-symmetric input it is not the derivative of the lower-triangle function.

CuPy is imported lazily; `import eigenbench.ops.cupy_bridge` works without it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch.autograd.function import FunctionCtx, once_differentiable

from eigenbench.errors import MissingDependency

BACKENDS = ("torch", "cupy")
UPLOS = ("L", "U")
_INSTALL_HINT = (
    "install CuPy for your CUDA version: `pip install cupy-cuda12x` (extra 'gpu') "
    "or `pip install cupy-cuda13x` (extra 'gpu-cuda13')"
)
_STREAMS: dict[tuple[int, int], Any] = {}
"""CuPy's view of each torch stream used so far, by (device index, stream handle)."""


def _import_cupy(where: str) -> Any:
    """The cupy module, or MissingDependency naming `where` and what to install."""
    try:
        import cupy
    except ImportError as exc:
        raise MissingDependency(
            f"{where}: needs CuPy, which is not importable ({exc}); {_INSTALL_HINT}"
        ) from exc
    return cupy


def has_cupy() -> bool:
    """True if CuPy can be imported (a GPU may still be missing)."""
    try:
        _import_cupy("has_cupy")
    except MissingDependency:
        return False
    return True


def _check_square(A: Any, where: str) -> None:
    if not isinstance(A, torch.Tensor):
        raise TypeError(f"{where}: expected a torch.Tensor, got {type(A).__name__}")
    if A.ndim < 2 or A.shape[-1] != A.shape[-2]:
        raise ValueError(f"{where}: expected square matrices (… × n × n), got {tuple(A.shape)}")
    if not A.is_floating_point():
        raise TypeError(f"{where}: expected a floating dtype, got {A.dtype}")


def _check_cuda(A: torch.Tensor, where: str) -> None:
    if not A.is_cuda:
        raise ValueError(
            f"{where}: the CuPy path needs a CUDA tensor, got one on {A.device}; "
            "use backend='torch' (or 'auto') for CPU tensors"
        )


def _check_uplo(uplo: Any, where: str) -> str:
    if uplo not in UPLOS:
        raise ValueError(f"{where}: uplo must be 'L' or 'U', got {uplo!r}")
    return str(uplo)


def _cuda_index(device: torch.device | str | int | None, where: str) -> int:
    if device is None:
        return torch.cuda.current_device()
    d = torch.device("cuda", device) if isinstance(device, int) else torch.device(device)
    if d.type != "cuda":
        raise ValueError(f"{where}: expected a CUDA device, got {d}")
    return torch.cuda.current_device() if d.index is None else d.index


@contextlib.contextmanager
def cupy_on_torch_stream(device: torch.device | str | int | None = None) -> Iterator[Any]:
    """Run the CuPy calls inside on `device`, on torch's current stream there; yields cupy.

    Without this, CuPy would use its own current stream (the legacy default), which torch's
    non-default streams do not wait for: the DLPack handshake orders only the exchange itself.
    """
    cupy = _import_cupy("cupy_on_torch_stream")
    index = _cuda_index(device, "cupy_on_torch_stream")
    with torch.cuda.device(index), cupy.cuda.Device(index):
        with cupy_stream_of(cupy, torch.cuda.current_stream(index), index):
            yield cupy


def cupy_stream_of(cupy: Any, stream: Any, index: int) -> Any:
    """CuPy's stream object for a torch stream, made once per (device, stream) and kept.

    CuPy ≥ 14 takes the stream through the `__cuda_stream__` protocol
    (`cupy.cuda.Stream.from_external`, which keeps the torch stream alive);
    `cupy.cuda.ExternalStream`, which CuPy 14 deprecates with a warning on every
    construction, is used only by older CuPy.
    """
    key = (index, int(stream.cuda_stream))
    found = _STREAMS.get(key)
    if found is None:
        from_external = getattr(cupy.cuda.Stream, "from_external", None)
        if from_external is not None and hasattr(stream, "__cuda_stream__"):
            found = from_external(stream)
        else:
            found = cupy.cuda.ExternalStream(stream.cuda_stream, index)
        _STREAMS[key] = found
    return found


def to_cupy(t: torch.Tensor) -> Any:
    """The same memory as a CuPy array (detached; no copy). Call inside `cupy_on_torch_stream`."""
    cupy = _import_cupy("to_cupy")
    _check_cuda(t, "to_cupy")
    return cupy.from_dlpack(t.detach())


def to_torch(a: Any) -> torch.Tensor:
    """The same memory as a torch tensor (no copy; CuPy's strides are kept)."""
    return torch.from_dlpack(a)


def _prepare(A: Any, where: str) -> None:
    _check_square(A, where)
    _import_cupy(where)
    _check_cuda(A, where)


def cupy_eigvalsh(A: torch.Tensor, uplo: str = "L") -> torch.Tensor:
    """Eigenvalues (ascending, … × n) of CUDA matrices by CuPy; asynchronous, no copy in or out."""
    _prepare(A, "cupy_eigvalsh")
    uplo = _check_uplo(uplo, "cupy_eigvalsh")
    with cupy_on_torch_stream(A.device) as cupy:
        return to_torch(cupy.linalg.eigvalsh(to_cupy(A), UPLO=uplo))


def cupy_eigh(A: torch.Tensor, uplo: str = "L") -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (ascending) and eigenvectors (columns) of CUDA matrices by CuPy.

    The eigenvector tensor keeps CuPy's layout (column-major per matrix, not contiguous).
    """
    _prepare(A, "cupy_eigh")
    uplo = _check_uplo(uplo, "cupy_eigh")
    with cupy_on_torch_stream(A.device) as cupy:
        w, Q = cupy.linalg.eigh(to_cupy(A), UPLO=uplo)
        return to_torch(w), to_torch(Q)


def _eigvalsh(A: torch.Tensor, backend: str, uplo: str) -> torch.Tensor:
    if backend == "cupy":
        return cupy_eigvalsh(A, uplo)
    return torch.linalg.eigvalsh(A, UPLO=uplo)


def _eigh(A: torch.Tensor, backend: str, uplo: str) -> tuple[torch.Tensor, torch.Tensor]:
    if backend == "cupy":
        return cupy_eigh(A, uplo)
    w, Q = torch.linalg.eigh(A, UPLO=uplo)
    return w, Q


def _check_k(k: Any, n: int, where: str) -> int:
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError(f"{where}: k must be an int, got {type(k).__name__}")
    if not -n <= k < n:
        raise ValueError(f"{where}: k must be in {-n}..{n - 1} for {n}×{n} matrices, got {k}")
    return k


def _check_backend(backend: Any, where: str, allow_auto: bool) -> str:
    allowed = (*BACKENDS, "auto") if allow_auto else BACKENDS
    if backend not in allowed:
        raise ValueError(f"{where}: backend must be one of {list(allowed)}, got {backend!r}")
    return str(backend)


class KthEigenvalue(torch.autograd.Function):
    """λ_k (0-based, ascending) of each matrix; backward g · q_k q_kᵀ; backend "torch" or "cupy".

    Apply as `KthEigenvalue.apply(A, k, backend, uplo)`, or use `kth_eigvalsh`, which checks
    its input. When A does not require grad only the eigenvalues are computed (eigvalsh).
    `ctx.needs_input_grad` ignores `torch.no_grad()`, so `kth_eigvalsh` takes that
    eigenvalues-only path itself whenever grad mode is off.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: FunctionCtx, A: torch.Tensor, k: int, backend: str, uplo: str
    ) -> torch.Tensor:
        if ctx.needs_input_grad[0]:  # type: ignore[attr-defined]
            w, Q = _eigh(A, backend, uplo)
            # Own copy of column k, so the full eigenvector batch can be freed.
            ctx.save_for_backward(Q[..., :, k].clone(memory_format=torch.contiguous_format))
        else:
            w = _eigvalsh(A, backend, uplo)
        return w[..., k].clone()

    @staticmethod
    @once_differentiable
    def backward(  # type: ignore[override]
        ctx: Any, g: torch.Tensor
    ) -> tuple[torch.Tensor, None, None, None]:
        (q,) = ctx.saved_tensors  # … × n
        g = g.to(q.dtype)
        grad = (q * g[..., None]).unsqueeze(-1) * q.unsqueeze(-2)
        return grad, None, None, None


def resolve_backend(A: torch.Tensor, backend: str = "auto") -> str:
    """ "auto" → "cupy" for CUDA tensors when CuPy is importable, else "torch"."""
    backend = _check_backend(backend, "resolve_backend", allow_auto=True)
    if backend != "auto":
        return backend
    return "cupy" if A.is_cuda and has_cupy() else "torch"


def kth_eigvalsh(
    A: torch.Tensor, k: int, backend: str = "auto", *, uplo: str = "L"
) -> torch.Tensor:
    """λ_k (0-based, ascending; negative k from the largest) of each matrix, differentiable.

    backend "auto" uses CuPy for CUDA tensors when CuPy is importable, torch elsewhere;
    "cupy" needs CuPy and a CUDA tensor; "torch" runs anywhere.
    """
    _check_square(A, "kth_eigvalsh")
    k = _check_k(k, A.shape[-1], "kth_eigvalsh")
    uplo = _check_uplo(uplo, "kth_eigvalsh")
    backend = resolve_backend(A, backend)
    if backend == "cupy":
        _import_cupy("kth_eigvalsh(backend='cupy')")
        _check_cuda(A, "kth_eigvalsh(backend='cupy')")
    if not (torch.is_grad_enabled() and A.requires_grad):
        return _eigvalsh(A, backend, uplo)[..., k].clone()
    return KthEigenvalue.apply(A, k, backend, uplo)  # type: ignore[no-any-return]
