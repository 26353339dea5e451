"""Spectral regression model: values against NumPy, μ ordering, data, training on CPU and GPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eigenbench.ops.spectral import (
    HOUSING_FEATURES,
    HOUSING_ROWS,
    Nondecreasing,
    SpectralRegressor,
    make_housing_like,
    train_epoch,
)


def _model(
    nf: int = 3, dim: int = 5, k: int | None = None, backend: str = "torch"
) -> SpectralRegressor:
    return SpectralRegressor(nf, dim, k, backend, generator=torch.Generator().manual_seed(0))


def _reference(model: SpectralRegressor, x: torch.Tensor) -> np.ndarray:
    """λ_k(diag(μ) + Σ_i x_i ½(A_i + A_iᵀ)) in float64 by NumPy, one matrix per row."""
    A = model.A.detach().double().cpu().numpy()
    mu = model.mu().detach().double().cpu().numpy()
    out = []
    for row in x.detach().double().cpu().numpy():
        M = np.diag(mu) + sum(r * 0.5 * (a + a.T) for r, a in zip(row, A, strict=True))
        out.append(np.linalg.eigvalsh(M)[model.k])
    return np.array(out)


@pytest.mark.parametrize("k", [None, 0, 4])
def test_output_is_kth_eigenvalue_of_the_model_matrix(k: int | None) -> None:
    model = _model(k=k).double()
    x = torch.randn(7, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    got = model(x)
    assert got.shape == (7,)
    assert model.k == (5 // 2 if k is None else k)
    np.testing.assert_allclose(got.detach().numpy(), _reference(model, x), rtol=0, atol=1e-12)


def test_gradients_match_autograd_through_eigvalsh() -> None:
    model = _model().double()
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    model(x).pow(2).sum().backward()
    got = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    model.zero_grad()
    torch.linalg.eigvalsh(model.matrices(x))[..., model.k].pow(2).sum().backward()
    want = [p.grad for p in model.parameters() if p.grad is not None]
    assert len(got) == len(want) == 3
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=0, atol=1e-12)


def test_mu_starts_at_linspace_and_stays_nondecreasing() -> None:
    mu = Nondecreasing(6)
    torch.testing.assert_close(mu().detach(), torch.linspace(-1, 1, 6), rtol=0, atol=1e-6)
    with torch.no_grad():
        for p in mu.parameters():
            p.normal_(0.0, 5.0, generator=torch.Generator().manual_seed(3))
    assert bool((mu().diff() >= 0).all())
    assert Nondecreasing(1)().shape == (1,)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((0, 4), "num_features"),
        ((3, 0), "dim"),
        ((3, 4, 4), "k must be"),
        ((3, 4, -1), "k must be"),
        ((3, 4, 1, "jax"), "backend"),
    ],
)
def test_bad_model_arguments_are_rejected(args: tuple[object, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SpectralRegressor(*args)  # type: ignore[arg-type]


def test_model_rejects_wrong_feature_count() -> None:
    with pytest.raises(ValueError, match=r"shape \(batch, 3\)"):
        _model()(torch.zeros(4, 2))


def test_housing_like_shape_scaling_and_seed() -> None:
    X, y = make_housing_like()
    assert X.shape == (HOUSING_ROWS, HOUSING_FEATURES) == (20640, 8)
    assert y.shape == (20640,)
    assert X.dtype == y.dtype == torch.float32
    torch.testing.assert_close(y.mean(), torch.tensor(0.0), rtol=0, atol=1e-5)
    torch.testing.assert_close(y.std(), torch.tensor(1.0), rtol=0, atol=1e-5)
    torch.testing.assert_close(X.std(0), torch.ones(8), rtol=0, atol=1e-5)
    X2, y2 = make_housing_like(seed=0)
    assert torch.equal(X, X2) and torch.equal(y, y2)
    assert not torch.equal(make_housing_like(100, seed=1)[1], make_housing_like(100, seed=2)[1])


def test_housing_like_has_learnable_signal_and_noise() -> None:
    X, y = make_housing_like(4000, seed=3, dtype=torch.float64)
    design = torch.cat([X, torch.ones(len(X), 1, dtype=X.dtype)], dim=1)
    coef = torch.linalg.lstsq(design, y[:, None]).solution
    r2 = 1 - float((y - (design @ coef)[:, 0]).var() / y.var())
    assert 0.3 < r2 < 0.95


def test_housing_like_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError, match="n_rows"):
        make_housing_like(1)
    with pytest.raises(ValueError, match="n_features"):
        make_housing_like(10, 0)


def test_train_epoch_returns_the_mean_loss_per_row() -> None:
    """With lr 0 nothing moves, so the epoch mean is the full-data MSE (uneven last batch)."""
    X, y = make_housing_like(103, 3, seed=4)
    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    got = train_epoch(model, X, y, optimizer, batch_size=10)
    with torch.no_grad():
        want = float(torch.nn.functional.mse_loss(model(X), y))
    assert got == pytest.approx(want, rel=1e-5)


def test_train_epoch_rejects_mismatched_data() -> None:
    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="train_epoch"):
        train_epoch(model, torch.zeros(5, 3), torch.zeros(4), optimizer)
    with pytest.raises(ValueError, match="batch_size"):
        train_epoch(model, torch.zeros(5, 3), torch.zeros(5), optimizer, batch_size=0)


def _train(backend: str, device: str, epochs: int = 5) -> list[float]:
    X, y = make_housing_like(512, seed=5, device=device)
    model = SpectralRegressor(8, 6, backend=backend, generator=torch.Generator().manual_seed(6))
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    return [train_epoch(model, X, y, optimizer, batch_size=32) for _ in range(epochs)]


def test_model_trains_on_cpu_with_torch_backend() -> None:
    losses = _train("torch", "cpu")
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.7 * losses[0]
    assert losses[-1] < 0.6  # better than predicting the mean (variance 1)


@pytest.mark.gpu
def test_model_trains_on_cuda_with_torch_backend() -> None:
    losses = _train("torch", "cuda")
    assert losses[-1] < 0.7 * losses[0]


@pytest.mark.cupy
def test_model_trains_with_cupy_backend_like_torch() -> None:
    cupy_losses = _train("cupy", "cuda")
    torch_losses = _train("torch", "cuda")
    assert cupy_losses[-1] < 0.7 * cupy_losses[0]
    np.testing.assert_allclose(cupy_losses, torch_losses, rtol=1e-2)
