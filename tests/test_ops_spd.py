"""SPD parametrizations: values against SciPy/NumPy, gradients, inverses, checks, fitting."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn
from torch.nn.utils import parametrize

from eigenbench.ops.spd import (
    CholeskySPD,
    SymmetricExp,
    fit_spd,
    float32_spd_failure,
    is_spd,
    make_parametrization,
    min_eigenvalue,
    nearest_spd,
    random_spd,
)

SHAPES = [(3, 3), (2, 5, 5), (2, 3, 4, 4)]
PARAMS = [SymmetricExp, CholeskySPD]


def _raw(shape: tuple[int, ...], seed: int = 0, scale: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(shape, generator=g, dtype=torch.float64)


def _flat(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy().reshape(-1, t.shape[-2], t.shape[-1])


def _ref_symexp(X: torch.Tensor) -> np.ndarray:
    return np.stack([scipy.linalg.expm(0.5 * (x + x.T)) for x in _flat(X)])


def _ref_cholesky(X: torch.Tensor, min_diag: float = 0.0) -> np.ndarray:
    out = []
    for x in _flat(X):
        L = np.tril(x, -1) + np.diag(np.logaddexp(0.0, np.diag(x)) + min_diag)
        out.append(L @ L.T)
    return np.stack(out)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("cls", PARAMS)
def test_forward_is_symmetric_positive_definite(
    cls: type[SymmetricExp | CholeskySPD], shape: tuple[int, ...]
) -> None:
    X = _raw(shape, seed=len(shape), scale=1.5)
    W = cls()(X)
    assert W.shape == X.shape
    np_w = _flat(W)
    assert np.abs(np_w - np_w.transpose(0, 2, 1)).max() <= 1e-12 * np.abs(np_w).max()
    assert np.linalg.eigvalsh(0.5 * (np_w + np_w.transpose(0, 2, 1))).min() > 0
    assert bool(torch.as_tensor(is_spd(W)).all())


@pytest.mark.parametrize("shape", SHAPES)
def test_forward_values_match_scipy_and_numpy(shape: tuple[int, ...]) -> None:
    X = _raw(shape, seed=7)
    np.testing.assert_allclose(_flat(SymmetricExp()(X)), _ref_symexp(X), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(_flat(CholeskySPD()(X)), _ref_cholesky(X), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(
        _flat(CholeskySPD(min_diag=0.25)(X)), _ref_cholesky(X, 0.25), rtol=1e-12, atol=1e-14
    )


def test_cholesky_min_diag_bounds_the_pivots() -> None:
    X = _raw((4, 6, 6), seed=3)
    X.diagonal(dim1=-2, dim2=-1).fill_(-50.0)  # softplus(-50) ~ 2e-22
    W = CholeskySPD(min_diag=0.5)(X)
    pivots = torch.linalg.cholesky(W).diagonal(dim1=-2, dim2=-1)
    assert bool((pivots >= 0.5 - 1e-12).all())
    assert bool((CholeskySPD().factor(X).diagonal(dim1=-2, dim2=-1) < 1e-20).all())


@pytest.mark.parametrize("cls", PARAMS)
def test_gradients_reach_the_raw_parameter_through_a_linear(
    cls: type[SymmetricExp | CholeskySPD],
) -> None:
    lin = nn.Linear(4, 4, bias=False).double()
    parametrize.register_parametrization(lin, "weight", cls())
    (raw,) = lin.parameters()  # the raw parameter behind the parametrized weight
    x = _raw((8, 4), seed=1)
    lin(x).square().sum().backward()
    assert raw.grad is not None
    assert torch.isfinite(raw.grad).all()
    assert float(raw.grad.abs().max()) > 0
    if cls is CholeskySPD:  # entries above the diagonal are not used
        assert float(torch.triu(raw.grad, diagonal=1).abs().max()) == 0.0


@pytest.mark.parametrize("cls", PARAMS)
def test_gradients_match_finite_differences(cls: type[SymmetricExp | CholeskySPD]) -> None:
    X = _raw((2, 3, 3), seed=5, scale=0.7).requires_grad_(True)
    assert torch.autograd.gradcheck(cls(), (X,), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("cls", PARAMS)
@pytest.mark.parametrize("cond", [10.0, 1e6])
def test_right_inverse_round_trips_spd_matrices(
    cls: type[SymmetricExp | CholeskySPD], cond: float
) -> None:
    p = cls()
    W = random_spd(5, (3,), cond=cond, seed=11)
    back = p(p.right_inverse(W))
    np.testing.assert_allclose(back.numpy(), W.numpy(), rtol=0, atol=1e-11)


@pytest.mark.parametrize("cls", PARAMS)
def test_assigning_an_spd_weight_through_parametrize(cls: type[SymmetricExp | CholeskySPD]) -> None:
    lin = nn.Linear(5, 5, bias=False).double()
    parametrize.register_parametrization(lin, "weight", cls())
    assert is_spd(lin.weight)  # a random initial weight is projected, registration works
    target = random_spd(5, cond=100.0, seed=2)
    with torch.no_grad():
        lin.weight = target
    np.testing.assert_allclose(lin.weight.detach().numpy(), target.numpy(), atol=1e-12)


@pytest.mark.parametrize("cls", PARAMS)
def test_right_inverse_projects_a_non_spd_matrix(cls: type[SymmetricExp | CholeskySPD]) -> None:
    Q, _ = torch.linalg.qr(_raw((3, 3), seed=4))
    W = Q @ torch.diag(torch.tensor([2.0, -1.0, 0.5], dtype=torch.float64)) @ Q.T
    expected = Q @ torch.diag(torch.tensor([2.0, 0.02, 0.5], dtype=torch.float64)) @ Q.T
    p = cls(floor=1e-2)
    np.testing.assert_allclose(p(p.right_inverse(W)).numpy(), expected.numpy(), atol=1e-12)
    np.testing.assert_allclose(nearest_spd(W, floor=1e-2).numpy(), expected.numpy(), atol=1e-12)


def test_min_eigenvalue_and_is_spd_against_numpy() -> None:
    W = _raw((4, 5, 5), seed=9)
    W = W + W.mT
    expected = np.linalg.eigvalsh(W.numpy()).min(axis=-1)
    np.testing.assert_allclose(min_eigenvalue(W).numpy(), expected, atol=1e-12)
    np.testing.assert_array_equal(torch.as_tensor(is_spd(W)).numpy(), expected > 0)
    spd = random_spd(3, cond=10.0, seed=1)
    assert is_spd(spd) is True
    assert is_spd(spd, tol=0.5) is False  # smallest eigenvalue is 0.1
    skew = spd.clone()
    skew[0, 1] += 1e-3
    assert is_spd(skew) is False
    assert is_spd(skew, sym_tol=1e-2) is True
    batch = torch.stack([spd, spd.clone().fill_(float("nan"))])
    assert torch.as_tensor(is_spd(batch)).tolist() == [True, False]


def test_random_spd_has_the_requested_spectrum() -> None:
    W = random_spd(6, (2,), cond=1e3, seed=0)
    lam = np.linalg.eigvalsh(W.numpy())
    np.testing.assert_allclose(lam[:, 0], 1e-3, rtol=1e-8)
    np.testing.assert_allclose(lam[:, -1], 1.0, rtol=1e-10)


def test_float32_failure_report_finds_the_breaking_condition_number() -> None:
    rep = float32_spd_failure(8, seed=0, batch=8, log10_conds=(2, 12))
    for name in ("symmetric_exp", "cholesky"):
        cols = rep[name]
        assert cols["frac_not_pd_f64"] == [0.0, 0.0]
        assert cols["frac_not_pd_f32"][0] == 0.0
        assert cols["frac_not_pd_f32"][1] > 0.5  # λ_min = 1e-12 is far below float32 rounding
        assert cols["min_eig_f64"][1] > 0
        assert rep["first_failure_log10_cond"][name] == 12


@pytest.mark.parametrize(("name", "steps"), [("cholesky", 400), ("symmetric_exp", 700)])
def test_fit_spd_reaches_the_target_loss(name: str, steps: int) -> None:
    target = random_spd(4, (2,), cond=10.0, seed=1)
    seen: list[tuple[int, float]] = []
    out = fit_spd(
        target,
        name,
        steps=steps,
        lr=0.1,
        target_loss=1e-8,
        on_step=lambda t, v: seen.append((t, v)),
    )
    losses = out["losses"]
    assert out["converged"]
    assert losses[-1] <= 1e-8 < losses[0]
    assert out["steps"] == len(losses) - 1 < steps
    assert [v for _, v in seen] == losses
    assert [t for t, _ in seen] == list(range(len(losses)))
    direct = float((out["weight"] - target).square().sum() / target.square().sum())
    assert direct == pytest.approx(losses[-1], rel=1e-6)
    assert bool(torch.as_tensor(is_spd(out["weight"])).all())


def test_fit_spd_with_sgd_reduces_the_loss() -> None:
    target = random_spd(3, cond=5.0, seed=3)
    out = fit_spd(target, CholeskySPD(), steps=100, lr=0.1, optimizer="sgd")
    assert not out["converged"]
    assert out["steps"] == len(out["losses"]) == 100
    assert out["losses"][-1] < 0.1 * out["losses"][0]


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="square"):
        SymmetricExp()(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="square"):
        CholeskySPD()(torch.zeros(3))
    with pytest.raises(TypeError, match="floating"):
        min_eigenvalue(torch.eye(3, dtype=torch.int64))
    with pytest.raises(ValueError, match="min_diag"):
        CholeskySPD(min_diag=-1.0)
    with pytest.raises(ValueError, match="unknown SPD parametrization"):
        make_parametrization("qr")
    with pytest.raises(ValueError, match="optimizer"):
        fit_spd(torch.eye(2, dtype=torch.float64), optimizer="lbfgs")
