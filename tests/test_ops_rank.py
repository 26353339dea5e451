"""Average ranks and Spearman's ρ against SciPy: ties, NaN, batching, bad input, CUDA.

Hypothesis examples: 150 for rankdata, 150 for spearman, 60 for batched-equals-per-row
(360 in all, derandomized so a failure reproduces). The fixed-shape path that CUDA takes is
also run on the CPU (private `_ranks_rows(..., sync_free=True)`), so it is checked here too.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.stats
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from eigenbench.ops.rank import _ranks_rows, rankdata, spearman, spearman_naive

SETTINGS = settings(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
TOL = 1e-12
LONG = 40_000  # above torch's radix-sort threshold: exercises the one-row-at-a-time CPU path


def scipy_ranks(a: np.ndarray) -> np.ndarray:
    """SciPy's average ranks of each row of a 2-D array (NaN rows all NaN)."""
    return np.stack([scipy.stats.rankdata(row) for row in a]).astype(np.float64)


def scipy_rho(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """SciPy's Spearman ρ of each row pair of two 2-D arrays."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConstantInputWarning
        return np.array([scipy.stats.spearmanr(r, s).statistic for r, s in zip(a, b, strict=True)])


def _as_2d(a: np.ndarray) -> np.ndarray:
    return a.reshape(1, -1) if a.ndim == 1 else a


# Values: tie-rich (a few small integers, ±0.0 included), any finite float, or a mix.
_small = st.sampled_from([-2.0, -1.0, -0.0, 0.0, 1.0, 3.0])
_any = st.floats(-1e6, 1e6, allow_nan=False, width=32)
_elements = st.one_of(_small, _any)
_shapes = st.one_of(
    hnp.array_shapes(min_dims=1, max_dims=1, min_side=1, max_side=60),
    hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=25),
)


@st.composite
def _arrays(draw: st.DrawFn, min_n: int = 1) -> np.ndarray:
    shape = list(draw(_shapes))
    shape[-1] = max(shape[-1], min_n)
    dtype = draw(st.sampled_from([np.float32, np.float64, np.int64]))
    elements = draw(st.sampled_from([_small, _any, _elements]))
    if dtype == np.int64:
        elements = st.integers(-3, 3) | st.integers(-(2**62), 2**62)
    return draw(hnp.arrays(dtype, tuple(shape), elements=elements))


# ---------------------------------------------------------------- rankdata


@settings(SETTINGS, max_examples=150)
@given(_arrays())
def test_rankdata_equals_scipy_exactly(a: np.ndarray) -> None:
    expected = scipy_ranks(_as_2d(a)).reshape(a.shape)
    got = rankdata(torch.from_numpy(a))
    assert got.dtype == torch.float64
    assert got.shape == a.shape
    np.testing.assert_array_equal(got.numpy(), expected)
    # the fixed-shape path (the one CUDA runs) gives the very same ranks
    dense = _ranks_rows(torch.from_numpy(_as_2d(a)), 1.0, sync_free=True)
    np.testing.assert_array_equal(dense.numpy().reshape(a.shape), expected)


@pytest.mark.parametrize("sync_free", [False, True])
@pytest.mark.parametrize("kind", ["distinct", "few_ties", "heavy_ties", "signed_zeros", "float64"])
def test_rankdata_long_rows_equal_scipy(kind: str, sync_free: bool) -> None:
    rng = np.random.default_rng(7)
    a = rng.standard_normal((2, LONG)).astype(np.float32)
    if kind == "distinct":
        a = np.stack([rng.permutation(LONG), rng.permutation(LONG)]).astype(np.float32)
    elif kind == "few_ties":
        a[:, ::1000] = a[:, 1::1000]  # 40 tie pairs per row (the sparse fix-up)
    elif kind == "heavy_ties":
        a = rng.integers(0, 10, (2, LONG)).astype(np.float32)  # the expand-groups branch
    elif kind == "signed_zeros":
        a = rng.choice(np.array([-0.0, 0.0, -1.0, 1.0], np.float32), (2, LONG))
    else:  # float64 values a float32 would merge
        a = 1.0 + rng.integers(0, 1000, (2, LONG)) * 1e-12
    got = _ranks_rows(torch.from_numpy(a), 1.0, sync_free=sync_free)
    np.testing.assert_array_equal(got.numpy(), scipy_ranks(a))


@pytest.mark.parametrize(
    ("dtype", "values"),
    [
        (torch.bool, [True, False, True, True]),
        (torch.uint8, [3, 0, 255, 3]),
        (torch.int8, [-128, 127, 0, -128]),
        (torch.int16, [5, -5, 5, 0]),
        (torch.int32, [2**31 - 1, -(2**31), 0, 2**31 - 1]),
        (torch.int64, [2**63 - 1, -(2**63), 0, 2**63 - 1]),
        (torch.float16, [0.5, -0.0, 0.0, 65504.0]),
        (torch.bfloat16, [1.0, 1.0078125, 1.0, -3.0]),
    ],
)
def test_rankdata_dtypes(dtype: torch.dtype, values: list[object]) -> None:
    t = torch.tensor(values, dtype=dtype)
    ref = scipy.stats.rankdata(t.to(torch.float64).numpy() if t.is_floating_point() else t.numpy())
    np.testing.assert_array_equal(rankdata(t).numpy(), ref)
    dense = _ranks_rows(t.view(1, -1), 1.0, sync_free=True)[0]
    np.testing.assert_array_equal(dense.numpy(), ref)


def test_rankdata_infinities_and_extremes() -> None:
    a = np.array([np.inf, -np.inf, 0.0, 1e-45, -1e-45, np.inf, 3.4e38, -3.4e38], np.float32)
    np.testing.assert_array_equal(rankdata(torch.from_numpy(a)).numpy(), scipy.stats.rankdata(a))


def test_rankdata_nan_rows_propagate_like_scipy() -> None:
    a = np.array([[3.0, np.nan, 1.0, 1.0], [2.0, 2.0, 1.0, 0.5], [np.nan] * 4])
    got = rankdata(torch.from_numpy(a)).numpy()
    np.testing.assert_array_equal(got, scipy_ranks(a))  # NaN == NaN in assert_array_equal
    assert np.isnan(got[0]).all() and not np.isnan(got[1]).any()


def test_rankdata_empty_and_single() -> None:
    assert rankdata(torch.empty(0)).shape == (0,)
    assert rankdata(torch.empty(3, 0)).dtype == torch.float64
    np.testing.assert_array_equal(rankdata(torch.tensor([[5.0], [7.0]])).numpy(), [[1.0], [1.0]])


# ---------------------------------------------------------------- spearman


@st.composite
def _pairs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    a = draw(_arrays(min_n=2))
    b = draw(
        hnp.arrays(
            a.dtype, a.shape, elements=st.sampled_from([0, 1, 2, 5]) | st.integers(-100, 100)
        )
    )
    if draw(st.booleans()):
        a, b = b, a
    return a, b


@settings(SETTINGS, max_examples=150)
@given(_pairs())
def test_spearman_equals_scipy(pair: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = pair
    expected = scipy_rho(_as_2d(a), _as_2d(b)).reshape(a.shape[:-1])
    got = spearman(torch.from_numpy(a), torch.from_numpy(b))
    assert got.dtype == torch.float64
    assert got.shape == a.shape[:-1]
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=TOL, equal_nan=True)
    # NaN exactly where SciPy gives NaN (constant rows)
    np.testing.assert_array_equal(np.isnan(got.numpy()), np.isnan(expected))


@pytest.mark.parametrize("kind", ["continuous", "ties", "monotone", "reversed"])
def test_spearman_long_rows_equal_scipy(kind: str) -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal(200_000).astype(np.float32)
    y = x + rng.standard_normal(x.size).astype(np.float32)
    if kind == "ties":
        x, y = rng.integers(0, 10, x.size).astype(np.float32), np.round(y)
    elif kind == "monotone":
        y = 2 * x + 1
    elif kind == "reversed":
        y = -(x**3)
    got = spearman(torch.from_numpy(x), torch.from_numpy(y)).item()
    assert got == pytest.approx(scipy_rho(x[None], y[None])[0], abs=TOL, rel=0)


def test_spearman_dense_path_equals_scipy_on_cpu() -> None:
    """The sync-free branch (run on CUDA) through the public code path on the CPU."""
    from eigenbench.ops.rank import _spearman_rows

    rng = np.random.default_rng(5)
    x = rng.integers(0, 6, (3, 500)).astype(np.float32)
    y = rng.standard_normal((3, 500)).astype(np.float32)
    x[2] = 4.0  # a constant row
    got = _spearman_rows(torch.from_numpy(x), torch.from_numpy(y), sync_free=True).numpy()
    np.testing.assert_allclose(got, scipy_rho(x, y), rtol=0, atol=TOL, equal_nan=True)
    assert np.isnan(got[2])


def test_spearman_constant_input_is_nan() -> None:
    x = torch.full((50,), 2.5)
    y = torch.arange(50.0)
    assert torch.isnan(spearman(x, y)) and torch.isnan(spearman(y, x))
    assert torch.isnan(spearman(x, x))
    assert np.isnan(scipy_rho(x.numpy()[None], y.numpy()[None])[0])  # SciPy agrees


def test_spearman_nan_input_matches_scipy() -> None:
    x = np.array([[1.0, 2.0, np.nan, 4.0], [1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0]])
    y = np.array([[1.0, 3.0, 2.0, 4.0], [1.0, np.nan, 3.0, 4.0], [1.0, 2.0, 3.0, 5.0]])
    got = spearman(torch.from_numpy(x), torch.from_numpy(y)).numpy()
    expected = scipy_rho(x, y)
    np.testing.assert_array_equal(np.isnan(got), [True, True, False])
    np.testing.assert_array_equal(np.isnan(expected), [True, True, False])
    assert got[2] == pytest.approx(expected[2], abs=TOL)


def test_spearman_two_points_and_mixed_dtypes() -> None:
    assert spearman(torch.tensor([1.0, 2.0]), torch.tensor([5, 3])).item() == -1.0
    x = torch.tensor([1, 2, 2, 7], dtype=torch.int8)
    y = torch.tensor([0.5, 0.1, 0.9, 0.9], dtype=torch.float64)
    assert spearman(x, y).item() == pytest.approx(
        scipy_rho(x.numpy()[None], y.numpy()[None])[0], abs=TOL
    )


# ---------------------------------------------------------------- batching


@settings(SETTINGS, max_examples=60)
@given(
    hnp.arrays(
        np.float32,
        hnp.array_shapes(min_dims=2, max_dims=3, min_side=2, max_side=7),
        elements=st.sampled_from([0.0, 1.0, 2.0]) | st.floats(-10, 10, width=32),
    ),
    st.integers(0, 2),
    st.integers(0, 2**32 - 1),
)
def test_batched_equals_per_row(a: np.ndarray, dim: int, seed: int) -> None:
    dim = dim % a.ndim
    x = torch.from_numpy(a)
    y = torch.from_numpy(np.random.default_rng(seed).permutation(a.ravel()).reshape(a.shape))
    ranks = rankdata(x, dim=dim)
    rho = spearman(x, y, dim=dim)
    xm, ym, rm = x.movedim(dim, -1), y.movedim(dim, -1), ranks.movedim(dim, -1)
    for idx in np.ndindex(*xm.shape[:-1]):
        assert torch.equal(rm[idx], rankdata(xm[idx]))
        single = spearman(xm[idx], ym[idx])
        assert torch.equal(rho[idx].isnan(), single.isnan())
        if not single.isnan():
            assert abs(rho[idx].item() - single.item()) <= TOL


def test_dim_argument_and_non_contiguous_input() -> None:
    rng = np.random.default_rng(1)
    a = rng.integers(0, 4, (5, 6, 7)).astype(np.float64)
    t = torch.from_numpy(a).transpose(0, 2)  # non-contiguous view, shape (7, 6, 5)
    got = rankdata(t, dim=1).numpy()
    expected = scipy.stats.rankdata(a.transpose(2, 1, 0), axis=1)
    np.testing.assert_array_equal(got, expected)


# ---------------------------------------------------------------- bad input


def test_bad_shapes_raise_value_errors_naming_them() -> None:
    with pytest.raises(ValueError, match=r"\(3, 4\) and \(3, 5\)"):
        spearman(torch.zeros(3, 4), torch.zeros(3, 5))
    with pytest.raises(ValueError, match=r"at least 2 points.*\(1,\)"):
        spearman(torch.zeros(1), torch.zeros(1))
    with pytest.raises(ValueError, match=r"at least 2 points.*\(4, 1\)"):
        spearman(torch.zeros(4, 1), torch.zeros(4, 1))
    with pytest.raises(ValueError, match="dim 2 is out of range"):
        spearman(torch.zeros(3, 4), torch.zeros(3, 4), dim=2)
    with pytest.raises(ValueError, match="dim -3 is out of range"):
        rankdata(torch.zeros(3, 4), dim=-3)
    with pytest.raises(ValueError, match="0-d"):
        rankdata(torch.tensor(1.0))
    with pytest.raises(ValueError, match=r"\(4,\) and \(5,\)"):
        spearman_naive(torch.zeros(4), torch.zeros(5))
    with pytest.raises(ValueError, match="1-D"):
        spearman_naive(torch.zeros(2, 4), torch.zeros(2, 4))


def test_bad_types_raise_type_errors() -> None:
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        rankdata(np.zeros(3))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="real"):
        spearman(torch.zeros(3, dtype=torch.complex64), torch.zeros(3, dtype=torch.complex64))


# ---------------------------------------------------------------- the seed's baseline


def test_spearman_naive_is_wrong_with_ties() -> None:
    """Double argsort gives ordinal ranks: with ties the answer depends on the tie order."""
    x = torch.tensor([1.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 3.0, 4.0, 4.0])
    y = torch.tensor([4.0, 3.0, 2.0, 1.0, 5.0, 6.0, 0.0, 7.0, 9.0, 8.0])
    ref = scipy_rho(x.numpy()[None], y.numpy()[None])[0]
    assert abs(spearman_naive(x, y).item() - ref) > 1e-2
    assert spearman(x, y).item() == pytest.approx(ref, abs=TOL)
    # a fully tied x has no correlation at all (SciPy: NaN); the naive version invents one
    assert not np.isnan(spearman_naive(torch.zeros(10), y).item())


def test_spearman_naive_agrees_without_ties() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.permutation(1000).astype(np.float32), rng.standard_normal(1000).astype(np.float32)
    got = spearman_naive(torch.from_numpy(x), torch.from_numpy(y))
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(scipy_rho(x[None], y[None])[0], abs=1e-5)


# ---------------------------------------------------------------- CUDA


_CUDA_CASES = ["continuous", "ties", "nan", "constant", "one_row", "short_rows", "float64"]


def _cuda_case(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(11)
    x = torch.randn(3, 100_000, generator=g)
    y = x + torch.randn(3, 100_000, generator=g)
    ties = torch.randint(0, 10, (3, 100_000), generator=g).float()
    if name == "ties":
        return ties, y
    if name == "nan":
        y[1, 5] = float("nan")
    elif name == "constant":
        x[2] = 1.5
    elif name == "one_row":
        return x[:1], ties[:1]
    elif name == "short_rows":
        return ties[:, :300].reshape(90, 10), x[:, :300].reshape(90, 10)
    elif name == "float64":
        return x.double(), ties.double()
    return x, y


@pytest.mark.gpu
@pytest.mark.parametrize("name", _CUDA_CASES)
def test_cuda_equals_cpu(name: str) -> None:
    x, y = _cuda_case(name)
    xc, yc = x.cuda(), y.cuda()
    for t, tc in ((x, xc), (y, yc)):
        for dim in (0, -1):
            cpu, gpu = rankdata(t, dim=dim), rankdata(tc, dim=dim).cpu()
            assert torch.allclose(gpu, cpu, rtol=0, atol=0, equal_nan=True), (name, dim)
    rho_gpu, rho_cpu = spearman(xc, yc).cpu(), spearman(x, y)
    assert torch.equal(rho_gpu.isnan(), rho_cpu.isnan()), name
    assert torch.allclose(rho_gpu, rho_cpu, rtol=0, atol=TOL, equal_nan=True), name


@pytest.mark.gpu
def test_cuda_spearman_and_rankdata_do_not_synchronise() -> None:
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 1_000_000, generator=g).cuda()
    y = torch.randint(0, 10, (2, 1_000_000), generator=g).float().cuda()
    spearman(x, y)  # warm-up: lazy CUDA/cuBLAS initialisation may synchronise once
    rankdata(x)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        rho = spearman(x, y)
        rho1 = spearman(x[0], y[0])
        ranks = rankdata(y, dim=-1)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert rho.shape == (2,) and rho1.shape == () and ranks.shape == y.shape
    assert rho.device.type == "cuda"
