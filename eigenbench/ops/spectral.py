"""The spectral regression model of seed 002: f(x) = λ_k(diag(μ) + Σ_i x_i A_i).

μ is non-decreasing (a start plus a cumulative sum of softplus increments, initialised to
linspace(−1, 1, dim)); the A_i are learnable and used through their symmetric part ½(A_i + A_iᵀ)
(the seed passes them unsymmetrised and lets eigvalsh read the lower triangle; the symmetric part
makes the gradient the true one, at the cost of one small extra op). λ_k is the k-th smallest
eigenvalue, 0-based (default k = dim // 2, as the seed's `eigval_idx=dim // 2`), computed by
`kth_eigvalsh` with the chosen backend. The seed trains it on California Housing with MSE,
AdamW lr 1e-4 and batches of 10 without shuffling; `make_housing_like` makes data of that shape.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from eigenbench.ops.cupy_bridge import BACKENDS, kth_eigvalsh

HOUSING_ROWS = 20640
HOUSING_FEATURES = 8


def _softplus_inv(y: torch.Tensor) -> torch.Tensor:
    """Inverse of softplus for y > 0: log(expm1(y)), written stably."""
    return y + torch.log(-torch.expm1(-y))


class Nondecreasing(nn.Module):
    """A learnable non-decreasing vector μ = [s, s + cumsum(softplus(increments))]."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"Nondecreasing: dim must be an int >= 1, got {dim!r}")
        start = torch.linspace(-1.0, 1.0, dim) if dim > 1 else torch.zeros(1)
        self.start = nn.Parameter(start[:1].clone())
        self.increments = nn.Parameter(_softplus_inv(start.diff()))

    def forward(self) -> torch.Tensor:
        steps = nn.functional.softplus(self.increments).cumsum(0)
        return torch.cat([self.start, self.start + steps])


class SpectralRegressor(nn.Module):
    """f(x) = λ_k(diag(μ) + Σ_i x_i ½(A_i + A_iᵀ)) for rows x of `num_features` features."""

    def __init__(
        self,
        num_features: int,
        dim: int,
        k: int | None = None,
        backend: str = "torch",
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("num_features", num_features), ("dim", dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"SpectralRegressor: {name} must be an int >= 1, got {value!r}")
        k = dim // 2 if k is None else k
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < dim:
            raise ValueError(f"SpectralRegressor: k must be an int in 0..{dim - 1}, got {k!r}")
        if backend not in (*BACKENDS, "auto"):
            raise ValueError(
                f"SpectralRegressor: backend must be 'torch', 'cupy' or 'auto', got {backend!r}"
            )
        self.backend = backend
        self.k = k
        self.mu = Nondecreasing(dim)
        scale = 1.0 / (math.sqrt(dim) * num_features)
        self.A = nn.Parameter(torch.randn(num_features, dim, dim, generator=generator) * scale)

    @property
    def num_features(self) -> int:
        return self.A.shape[0]

    @property
    def dim(self) -> int:
        return self.A.shape[1]

    def matrices(self, x: torch.Tensor) -> torch.Tensor:
        """diag(μ) + Σ_i x_i ½(A_i + A_iᵀ) for each row of x (batch × dim × dim)."""
        if x.ndim != 2 or x.shape[1] != self.num_features:
            raise ValueError(
                f"SpectralRegressor: expected x of shape (batch, {self.num_features}), "
                f"got {tuple(x.shape)}"
            )
        nf, dim = self.num_features, self.dim
        sym = 0.5 * (self.A + self.A.mT)
        features = (x @ sym.reshape(nf, dim * dim)).reshape(-1, dim, dim)
        return features + torch.diag(self.mu())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return kth_eigvalsh(self.matrices(x), self.k, self.backend)


def make_housing_like(
    n_rows: int = HOUSING_ROWS,
    n_features: int = HOUSING_FEATURES,
    seed: int = 0,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthetic regression data shaped like California Housing, standardised like the seed's.

    Features: skewed (log-normal, then logged) and plain Gaussian columns with some correlation,
    each standardised. Target: a smooth non-linear function of a few features plus noise
    (about a quarter of its variance), standardised. Same seed, same data.
    """
    if isinstance(n_rows, bool) or not isinstance(n_rows, int) or n_rows < 2:
        raise ValueError(f"make_housing_like: n_rows must be an int >= 2, got {n_rows!r}")
    if isinstance(n_features, bool) or not isinstance(n_features, int) or n_features < 1:
        raise ValueError(f"make_housing_like: n_features must be an int >= 1, got {n_features!r}")
    g = torch.Generator().manual_seed(seed)
    latent = torch.randn(n_rows, n_features, generator=g, dtype=torch.float64)
    mixing = torch.eye(n_features, dtype=torch.float64) + 0.3 * torch.randn(
        n_features, n_features, generator=g, dtype=torch.float64
    )
    X = latent @ mixing
    X[:, 1::3] = torch.log1p(torch.exp(X[:, 1::3]))  # skewed columns, like counts after log()
    X = (X - X.mean(0)) / X.std(0)
    signal = X[:, 0] + 0.5 * torch.tanh(2.0 * X[:, -1])
    if n_features > 1:
        signal = signal - 0.4 * X[:, 1] * X[:, 0] + 0.3 * X[:, 1] ** 2
    signal = signal / signal.std()
    y = signal + 0.6 * torch.randn(n_rows, generator=g, dtype=torch.float64)
    y = (y - y.mean()) / y.std()
    return X.to(device=device, dtype=dtype), y.to(device=device, dtype=dtype)


def train_epoch(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    batch_size: int = 10,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> float:
    """One pass over (X, y) in order, in batches; returns the epoch's mean loss per row.

    The loss is summed on the device and read once at the end (one host sync per epoch).
    """
    if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0] or X.shape[0] == 0:
        raise ValueError(
            f"train_epoch: expected X (n, features) and y (n,) with n >= 1, "
            f"got {tuple(X.shape)} and {tuple(y.shape)}"
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"train_epoch: batch_size must be an int >= 1, got {batch_size!r}")
    loss_fn = nn.functional.mse_loss if loss_fn is None else loss_fn
    model.train()
    total = torch.zeros((), dtype=torch.float64, device=X.device)
    for xb, yb in zip(X.split(batch_size), y.split(batch_size), strict=True):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
        total += loss.detach().to(torch.float64) * xb.shape[0]
    return float(total.item()) / X.shape[0]
