"""CuPy bridge: k-th eigenvalue autograd, backend dispatch, errors; CuPy paths on a GPU."""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

import eigenbench.ops.cupy_bridge as bridge
from eigenbench.errors import MissingDependency
from eigenbench.ops.cupy_bridge import (
    KthEigenvalue,
    cupy_eigh,
    cupy_eigvalsh,
    has_cupy,
    kth_eigvalsh,
    resolve_backend,
)

F64 = torch.float64


def _sym(shape: tuple[int, ...], seed: int = 0, dtype: torch.dtype = F64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    R = torch.randn(shape, generator=g, dtype=F64)
    return (0.5 * (R + R.mT)).to(dtype)


def _upstream(shape: tuple[int, ...], seed: int = 1) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


@pytest.mark.parametrize("k", [0, 2, 4, -1])
def test_kth_eigenvalue_matches_numpy(k: int) -> None:
    A = _sym((6, 5, 5))
    want = np.linalg.eigvalsh(A.numpy())[..., k]
    got = kth_eigvalsh(A, k, backend="torch")
    assert got.shape == (6,)
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("k", [0, 3, -1])
def test_kth_eigenvalue_backward_is_g_qk_qkT(k: int) -> None:
    A = _sym((4, 6, 6), seed=2)
    g = _upstream((4,))
    a = A.clone().requires_grad_(True)
    KthEigenvalue.apply(a, k, "torch", "L").backward(g)
    q = torch.linalg.eigh(A).eigenvectors[..., :, k]  # independent eigh, sign irrelevant
    want = g[:, None, None] * q[:, :, None] * q[:, None, :]
    assert a.grad is not None
    torch.testing.assert_close(a.grad, want, rtol=0, atol=1e-13)


@pytest.mark.parametrize("shape", [(4, 6, 6), (2, 3, 5, 5), (5, 5)])
def test_kth_eigenvalue_gradient_matches_torch_eigvalsh(shape: tuple[int, ...]) -> None:
    A = _sym(shape, seed=3)
    g = _upstream(shape[:-2], seed=4)
    a = A.clone().requires_grad_(True)
    kth_eigvalsh(a, 1, backend="torch").backward(g)
    ref = A.clone().requires_grad_(True)
    torch.linalg.eigvalsh(ref)[..., 1].backward(g)
    assert a.grad is not None and ref.grad is not None
    torch.testing.assert_close(a.grad, ref.grad, rtol=0, atol=1e-13)


def test_gradcheck_through_symmetrisation() -> None:
    """d λ_k(½(X + Xᵀ)) / dX_ij = q_i q_j, so gradcheck holds on any X."""
    X = _sym((2, 5, 5), seed=5).requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda x: kth_eigvalsh(0.5 * (x + x.mT), 2, backend="torch"), (X,)
    )


@pytest.mark.parametrize("uplo", ["L", "U"])
def test_uplo_reads_one_triangle(uplo: str) -> None:
    R = torch.randn(3, 5, 5, generator=torch.Generator().manual_seed(6), dtype=F64)
    want = torch.linalg.eigvalsh(R, UPLO=uplo)[..., 2]
    torch.testing.assert_close(kth_eigvalsh(R, 2, "torch", uplo=uplo), want, rtol=0, atol=1e-13)
    other = "U" if uplo == "L" else "L"
    assert not torch.allclose(kth_eigvalsh(R, 2, "torch", uplo=other), want)


def _spy(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    calls: list[int] = []
    real: Callable[..., Any] = getattr(torch.linalg, name)

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.linalg, name, spy)
    return calls


def test_inference_path_computes_eigenvalues_only(monkeypatch: pytest.MonkeyPatch) -> None:
    eigh_calls, eigvalsh_calls = _spy(monkeypatch, "eigh"), _spy(monkeypatch, "eigvalsh")
    A = _sym((3, 4, 4)).requires_grad_(True)
    with torch.no_grad():
        kth_eigvalsh(A, 1, backend="torch")
    kth_eigvalsh(A.detach(), 1, backend="torch")
    assert (len(eigh_calls), len(eigvalsh_calls)) == (0, 2)
    kth_eigvalsh(A, 1, backend="torch")
    assert (len(eigh_calls), len(eigvalsh_calls)) == (1, 2)


def test_output_holds_no_reference_to_the_eigenvalue_batch() -> None:
    out = kth_eigvalsh(_sym((8, 4, 4)), 0, backend="torch")
    assert out.is_contiguous()
    assert out.untyped_storage().nbytes() == out.numel() * out.element_size()


def test_auto_backend_uses_torch_on_cpu_even_with_cupy(monkeypatch: pytest.MonkeyPatch) -> None:
    A = _sym((2, 4, 4))
    assert resolve_backend(A, "auto") == "torch"
    monkeypatch.setattr(bridge, "has_cupy", lambda: True)

    def no_cupy(where: str) -> Any:
        raise AssertionError(f"CuPy was reached for a CPU tensor ({where})")

    monkeypatch.setattr(bridge, "_import_cupy", no_cupy)
    assert resolve_backend(A, "auto") == "torch"
    torch.testing.assert_close(kth_eigvalsh(A, 3), torch.linalg.eigvalsh(A)[..., 3])


def test_explicit_backends_resolve_to_themselves() -> None:
    A = _sym((2, 4, 4))
    assert resolve_backend(A, "torch") == "torch"
    assert resolve_backend(A, "cupy") == "cupy"


def test_has_cupy_is_a_bool_that_agrees_with_import() -> None:
    try:
        import cupy  # noqa: F401
    except ImportError:
        importable = False
    else:
        importable = True
    assert has_cupy() is importable


@pytest.mark.skipif(has_cupy(), reason="CuPy is importable here; the missing-CuPy path is moot")
@pytest.mark.parametrize(
    "call",
    [
        lambda A: kth_eigvalsh(A, 0, backend="cupy"),
        lambda A: cupy_eigvalsh(A),
        lambda A: cupy_eigh(A),
    ],
    ids=["kth_eigvalsh", "cupy_eigvalsh", "cupy_eigh"],
)
def test_cupy_backend_without_cupy_raises_missing_dependency(
    call: Callable[[torch.Tensor], Any],
) -> None:
    with pytest.raises(MissingDependency, match="pip install cupy"):
        call(_sym((2, 3, 3)))


@pytest.mark.parametrize(
    "call",
    [
        lambda A: kth_eigvalsh(A, 0, backend="cupy"),
        lambda A: cupy_eigvalsh(A),
        lambda A: cupy_eigh(A),
    ],
    ids=["kth_eigvalsh", "cupy_eigvalsh", "cupy_eigh"],
)
def test_cupy_path_rejects_cpu_tensors(
    monkeypatch: pytest.MonkeyPatch, call: Callable[[torch.Tensor], Any]
) -> None:
    monkeypatch.setattr(bridge, "_import_cupy", lambda where: types.ModuleType("cupy"))
    with pytest.raises(ValueError, match="CUDA tensor"):
        call(_sym((2, 3, 3)))


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((torch.zeros(2, 3, 4, dtype=F64), 0), {}, ValueError, "square"),
        ((torch.zeros(2, 3, 3, dtype=F64), 3), {}, ValueError, "k must be in -3..2"),
        ((torch.zeros(2, 3, 3, dtype=F64), -4), {}, ValueError, "k must be"),
        ((torch.zeros(2, 3, 3, dtype=F64), 1.0), {}, TypeError, "k must be an int"),
        ((torch.zeros(2, 3, 3, dtype=F64), 0), {"backend": "jax"}, ValueError, "backend"),
        ((torch.zeros(2, 3, 3, dtype=F64), 0), {"uplo": "X"}, ValueError, "uplo"),
        ((torch.zeros(2, 3, 3, dtype=torch.int32), 0), {}, TypeError, "floating"),
        ((np.zeros((3, 3)), 0), {}, TypeError, "torch.Tensor"),
    ],
)
def test_bad_input_is_rejected_with_a_clear_error(
    args: tuple[Any, ...], kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        kth_eigvalsh(*args, **kwargs)


# --- CUDA and CuPy -------------------------------------------------------------------------


@pytest.mark.gpu
def test_torch_backend_on_cuda_matches_cpu() -> None:
    A = _sym((6, 20, 20), seed=7)
    g = _upstream((6,))
    a = A.cuda().requires_grad_(True)
    kth_eigvalsh(a, 10, backend="torch").backward(g.cuda())
    ref = A.clone().requires_grad_(True)
    torch.linalg.eigvalsh(ref)[..., 10].backward(g)
    assert a.grad is not None and ref.grad is not None
    torch.testing.assert_close(a.grad.cpu(), ref.grad, rtol=0, atol=1e-10)


@pytest.mark.cupy
@pytest.mark.parametrize("shape", [(10, 16, 16), (3, 2, 40, 40), (12, 12)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cupy_eigvalsh_matches_torch_on_cuda(shape: tuple[int, ...], dtype: torch.dtype) -> None:
    A = _sym(shape, seed=8, dtype=dtype).cuda()
    got = cupy_eigvalsh(A)
    assert isinstance(got, torch.Tensor) and got.is_cuda and got.dtype == dtype
    assert got.shape == shape[:-1]
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    torch.testing.assert_close(got, torch.linalg.eigvalsh(A), rtol=0, atol=tol)


@pytest.mark.cupy
def test_cupy_eigh_reconstructs_its_input() -> None:
    A = _sym((5, 24, 24), seed=9).cuda()
    w, Q = cupy_eigh(A)
    torch.testing.assert_close((Q * w.unsqueeze(-2)) @ Q.mT, A, rtol=0, atol=1e-10)
    assert bool((w.diff(dim=-1) >= 0).all())


@pytest.mark.cupy
def test_dlpack_round_trip_is_zero_copy() -> None:
    t = torch.randn(4, 8, 8, device="cuda")
    with bridge.cupy_on_torch_stream(t.device):
        a = bridge.to_cupy(t)
        back = bridge.to_torch(a)
    assert a.data.ptr == t.data_ptr()
    assert back.data_ptr() == t.data_ptr()
    back[0, 0, 0] = 123.0
    assert float(t[0, 0, 0]) == 123.0


@pytest.mark.cupy
def test_cupy_runs_on_torch_current_stream() -> None:
    import cupy

    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        A = _sym((50, 64, 64), seed=10, dtype=torch.float32).cuda()
        with bridge.cupy_on_torch_stream(A.device):
            assert cupy.cuda.get_current_stream().ptr == side.cuda_stream
        got = cupy_eigvalsh(A)
        want = torch.linalg.eigvalsh(A)
        side.synchronize()
    torch.testing.assert_close(got, want, rtol=0, atol=1e-3)


@pytest.mark.cupy
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cupy_backend_gradient_matches_torch_backend(dtype: torch.dtype) -> None:
    A = _sym((20, 30, 30), seed=11, dtype=dtype).cuda()
    g = _upstream((20,)).to("cuda", dtype)
    grads = {}
    for backend in ("cupy", "torch"):
        a = A.clone().requires_grad_(True)
        out = kth_eigvalsh(a, 7, backend=backend)
        out.backward(g)
        grads[backend] = (out.detach(), a.grad)
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    torch.testing.assert_close(grads["cupy"][0], grads["torch"][0], rtol=0, atol=tol)
    torch.testing.assert_close(grads["cupy"][1], grads["torch"][1], rtol=0, atol=tol)


@pytest.mark.cupy
def test_auto_backend_picks_cupy_for_cuda_tensors() -> None:
    assert resolve_backend(torch.zeros(2, 3, 3, device="cuda")) == "cupy"


class _FakeTorchStream:
    """What the bridge reads of a torch stream: its handle, and the stream protocol."""

    def __init__(self, handle: int) -> None:
        self.cuda_stream = handle

    def __cuda_stream__(self) -> tuple[int, int]:
        return (0, self.cuda_stream)


class _FakeCupyStream:
    def __enter__(self) -> _FakeCupyStream:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _fake_cupy(*, modern: bool) -> tuple[Any, list[str]]:
    """A CuPy stand-in counting stream constructions; `ExternalStream` warns as in CuPy 14."""
    made: list[str] = []

    class Stream:
        @staticmethod
        def from_external(obj: Any) -> _FakeCupyStream:
            made.append(f"from_external:{obj.cuda_stream}")
            return _FakeCupyStream()

    if not modern:
        del Stream.from_external

    def external_stream(ptr: int, device_id: int = -1) -> _FakeCupyStream:
        import warnings

        warnings.warn("Use Stream.from_external()", DeprecationWarning, stacklevel=2)
        made.append(f"external:{ptr}")
        return _FakeCupyStream()

    cuda = types.SimpleNamespace(Stream=Stream, ExternalStream=external_stream)
    return types.SimpleNamespace(cuda=cuda), made


def test_stream_bridge_uses_the_stream_protocol_once_per_stream(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """CuPy 14 deprecates ExternalStream (a warning per call): use from_external, made once."""
    import warnings

    monkeypatch.setattr(bridge, "_STREAMS", {})
    cupy, made = _fake_cupy(modern=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        first = bridge.cupy_stream_of(cupy, _FakeTorchStream(7), 0)
        for _ in range(3):
            assert bridge.cupy_stream_of(cupy, _FakeTorchStream(7), 0) is first
        other = bridge.cupy_stream_of(cupy, _FakeTorchStream(9), 0)
    assert other is not first
    assert made == ["from_external:7", "from_external:9"]


def test_stream_bridge_falls_back_to_external_stream_on_old_cupy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bridge, "_STREAMS", {})
    cupy, made = _fake_cupy(modern=False)
    with pytest.warns(DeprecationWarning, match="from_external"):
        bridge.cupy_stream_of(cupy, _FakeTorchStream(7), 1)
    bridge.cupy_stream_of(cupy, _FakeTorchStream(7), 1)
    assert made == ["external:7"]


def test_cupy_on_torch_stream_enters_the_cached_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    """Entering the bridge three times constructs CuPy's stream once (no per-call warning)."""
    import contextlib

    monkeypatch.setattr(bridge, "_STREAMS", {})
    cupy, made = _fake_cupy(modern=True)
    cupy.cuda.Device = lambda index: contextlib.nullcontext()
    monkeypatch.setattr(bridge, "_import_cupy", lambda where: cupy)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "device", lambda index: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "current_stream", lambda index=None: _FakeTorchStream(5))
    for _ in range(3):
        with bridge.cupy_on_torch_stream() as got:
            assert got is cupy
    assert made == ["from_external:5"]
