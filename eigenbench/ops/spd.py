"""SPD parametrizations for `torch.nn.utils.parametrize`, SPD checks and a fitting loop.

`SymmetricExp` maps any square X to exp(½(X + Xᵀ)); `CholeskySPD` maps it to L Lᵀ with L the
lower triangle of X and a softplus diagonal. Both work on batches (… × n × n) and register on a
square `Linear` weight:

    parametrize.register_parametrization(linear, "weight", CholeskySPD())

Both define `right_inverse`, so assigning an SPD matrix to the weight stores raw parameters
that map back to it, at any conditioning. A matrix that is not SPD (such as the random initial
weight of a Linear at registration) is first replaced by the nearest SPD matrix whose
eigenvalues are at least `floor` (default 1e-2) times the largest |λ| (Frobenius norm; symmetric
part with eigenvalues clamped, Higham 1988), so registration never fails and starts from a
well-conditioned weight.

SPD holds in exact arithmetic only: in float32 an ill-conditioned result can have a
non-positive smallest eigenvalue (`float32_spd_failure` measures where).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

import torch
from torch import nn

PARAMETRIZATIONS = ("symmetric_exp", "cholesky")


def _check_square(W: torch.Tensor, where: str) -> None:
    if not isinstance(W, torch.Tensor):
        raise TypeError(f"{where}: expected a torch.Tensor, got {type(W).__name__}")
    if W.ndim < 2 or W.shape[-1] != W.shape[-2]:
        raise ValueError(
            f"{where}: expected square matrices (… × n × n), got shape {tuple(W.shape)}"
        )
    if not W.is_floating_point():
        raise TypeError(f"{where}: expected a floating dtype, got {W.dtype}")


def _sym(X: torch.Tensor) -> torch.Tensor:
    return 0.5 * (X + X.mT)


def _eigh_floored(
    W: torch.Tensor, floor: float, only_if_not_pd: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """eigh of the symmetric part; eigenvalues raised to at least `floor`·max|λ|.

    With `only_if_not_pd`, a matrix whose eigenvalues are all positive is left unchanged.
    """
    lam, Q = torch.linalg.eigh(_sym(W))
    scale = lam.abs().amax(dim=-1, keepdim=True)
    low = torch.clamp(floor * scale, min=torch.finfo(W.dtype).tiny)
    raised = torch.maximum(lam, low)
    if only_if_not_pd:
        raised = torch.where(lam[..., :1] > 0, lam, raised)
    return raised, Q


def nearest_spd(W: torch.Tensor, floor: float = 1e-2) -> torch.Tensor:
    """Nearest matrix to W (Frobenius) that is SPD with eigenvalues >= `floor`·max|λ|."""
    _check_square(W, "nearest_spd")
    lam, Q = _eigh_floored(W, floor, only_if_not_pd=False)
    return (Q * lam.unsqueeze(-2)) @ Q.mT


def _softplus(x: torch.Tensor) -> torch.Tensor:
    # Above the threshold softplus(x) is x; 20 is exact to float32, float64 needs ~37.
    return nn.functional.softplus(x, threshold=40.0 if x.dtype == torch.float64 else 20.0)


def _softplus_inv(y: torch.Tensor) -> torch.Tensor:
    """Inverse of softplus for y > 0: log(expm1(y)) written as y + log(-expm1(-y))."""
    return y + torch.log(-torch.expm1(-y))


class SymmetricExp(nn.Module):
    """W = matrix_exp(½(X + Xᵀ)): SPD for any square X; `right_inverse` is a symmetric log.

    The matrix exponential syncs with the host on CUDA (it reads the norm to choose a degree),
    and its backward is a 2n × 2n matrix exponential.
    """

    def __init__(self, floor: float = 1e-2) -> None:
        super().__init__()
        if not 0.0 < floor < 1.0:
            raise ValueError(f"SymmetricExp: floor must be in (0, 1), got {floor}")
        self.floor = floor

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        _check_square(X, "SymmetricExp")
        return torch.matrix_exp(_sym(X))

    def right_inverse(self, W: torch.Tensor) -> torch.Tensor:
        """Symmetric matrix log of W via eigh (non-SPD W is projected first)."""
        _check_square(W, "SymmetricExp.right_inverse")
        lam, Q = _eigh_floored(W, self.floor, only_if_not_pd=True)
        return (Q * torch.log(lam).unsqueeze(-2)) @ Q.mT

    def extra_repr(self) -> str:
        return f"floor={self.floor}"


class CholeskySPD(nn.Module):
    """W = L Lᵀ, L = strict lower triangle of X plus diag(softplus(diag X) + min_diag).

    Entries above the diagonal of X are ignored (zero gradient). `min_diag` > 0 bounds the
    Cholesky pivots away from zero; `right_inverse` is exact when every pivot exceeds it.
    """

    def __init__(self, min_diag: float = 0.0, floor: float = 1e-2) -> None:
        super().__init__()
        if min_diag < 0.0:
            raise ValueError(f"CholeskySPD: min_diag must be >= 0, got {min_diag}")
        if not 0.0 < floor < 1.0:
            raise ValueError(f"CholeskySPD: floor must be in (0, 1), got {floor}")
        self.min_diag = min_diag
        self.floor = floor

    def factor(self, X: torch.Tensor) -> torch.Tensor:
        """The lower-triangular factor L built from X."""
        _check_square(X, "CholeskySPD")
        diag = _softplus(torch.diagonal(X, dim1=-2, dim2=-1)) + self.min_diag
        return torch.tril(X, diagonal=-1) + torch.diag_embed(diag)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        L = self.factor(X)
        return L @ L.mT

    def right_inverse(self, W: torch.Tensor) -> torch.Tensor:
        """Raw X with zeros above the diagonal such that forward(X) = W.

        A matrix whose Cholesky factorisation fails is projected first (see the module doc).
        """
        _check_square(W, "CholeskySPD.right_inverse")
        S = _sym(W)
        L, info = torch.linalg.cholesky_ex(S)
        failed = (info > 0)[..., None, None]
        if bool(failed.any()):  # not (numerically) PD: project those matrices, then factor
            L, info = torch.linalg.cholesky_ex(torch.where(failed, nearest_spd(S, self.floor), S))
            if bool((info > 0).any()):
                raise ValueError("CholeskySPD.right_inverse: Cholesky failed after projection")
        d = torch.diagonal(L, dim1=-2, dim2=-1) - self.min_diag
        d = torch.clamp(d, min=torch.finfo(W.dtype).eps)
        return torch.tril(L, diagonal=-1) + torch.diag_embed(_softplus_inv(d))

    def extra_repr(self) -> str:
        return f"min_diag={self.min_diag}, floor={self.floor}"


def make_parametrization(name: str, **kwargs: Any) -> SymmetricExp | CholeskySPD:
    """`"symmetric_exp"` → SymmetricExp, `"cholesky"` → CholeskySPD."""
    if name == "symmetric_exp":
        return SymmetricExp(**kwargs)
    if name == "cholesky":
        return CholeskySPD(**kwargs)
    raise ValueError(f"unknown SPD parametrization {name!r}; expected one of {PARAMETRIZATIONS}")


def min_eigenvalue(W: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Smallest eigenvalue of the symmetric part of W (shape …), computed in `dtype` if given."""
    _check_square(W, "min_eigenvalue")
    W = W.detach() if dtype is None else W.detach().to(dtype)
    return torch.linalg.eigvalsh(_sym(W))[..., 0]


def is_spd(W: torch.Tensor, tol: float = 0.0, sym_tol: float | None = None) -> bool | torch.Tensor:
    """Whether W is finite, symmetric (within `sym_tol`) with smallest eigenvalue above `tol`.

    `sym_tol` defaults to 100 ulp of the largest entry. Returns a bool for one matrix and a
    bool tensor of the batch shape for a batch.
    """
    _check_square(W, "is_spd")
    W = W.detach()
    big = W.abs().amax(dim=(-2, -1))
    limit = (
        100 * torch.finfo(W.dtype).eps * big if sym_tol is None else torch.full_like(big, sym_tol)
    )
    symmetric = (W - W.mT).abs().amax(dim=(-2, -1)) <= limit
    finite = torch.isfinite(W).all(dim=-1).all(dim=-1)
    safe = torch.where(
        finite[..., None, None], W, torch.eye(W.shape[-1], dtype=W.dtype, device=W.device)
    )
    ok = finite & symmetric & (min_eigenvalue(safe) > tol)
    return bool(ok) if ok.ndim == 0 else ok


def random_spd(
    n: int,
    batch: Sequence[int] = (),
    *,
    cond: float = 10.0,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Seeded SPD matrices Q diag(λ) Qᵀ with λ log-spaced from 1 down to 1/cond."""
    if n < 1 or cond < 1.0:
        raise ValueError(f"random_spd: need n >= 1 and cond >= 1, got n={n}, cond={cond}")
    g = torch.Generator().manual_seed(seed)
    G = torch.randn((*batch, n, n), generator=g, dtype=torch.float64)
    Q, R = torch.linalg.qr(G)
    Q = Q * torch.sign(torch.diagonal(R, dim1=-2, dim2=-1)).unsqueeze(-2)
    lam = torch.logspace(0.0, -torch.log10(torch.tensor(cond)).item(), n, dtype=torch.float64)
    return ((Q * lam) @ Q.mT).to(dtype)


def float32_spd_failure(
    n: int,
    seed: int = 0,
    *,
    batch: int = 32,
    log10_conds: Sequence[float] = (2, 4, 5, 6, 7, 8, 9, 10, 12),
) -> dict[str, Any]:
    """Where float32 rounding breaks positive-definiteness, per parametrization.

    For each target condition number κ = 10^k: seeded float64 SPD targets W (eigenvalues
    log-spaced in [1/κ, 1]), raw X = right_inverse(W) in float64, then W₆₄ = f(X) and
    W₃₂ = f(X.float()). The smallest eigenvalue of W₃₂ is computed in float64 (the rounded
    matrix, not a float32 solver), so a value ≤ 0 is float32 rounding in the parametrization.
    Columns per parametrization (one entry per κ): fraction of the batch not PD in float32
    and float64, fraction where float32 Cholesky fails, and the smallest eigenvalue of each.
    `first_failure_log10_cond` is the smallest k where some float32 result is not PD while
    every float64 one is.
    """
    if n < 2 or batch < 1:
        raise ValueError(
            f"float32_spd_failure: need n >= 2 and batch >= 1, got n={n}, batch={batch}"
        )
    out: dict[str, Any] = {"n": n, "batch": batch, "seed": seed, "log10_cond": list(log10_conds)}
    first: dict[str, float | None] = {}
    for name in PARAMETRIZATIONS:
        p = make_parametrization(name)
        cols: dict[str, list[float]] = {
            k: []
            for k in (
                "frac_not_pd_f32",
                "frac_not_pd_f64",
                "frac_cholesky_fail_f32",
                "min_eig_f32",
                "min_eig_f64",
            )
        }
        first[name] = None
        for k in log10_conds:
            target = random_spd(n, (batch,), cond=10.0**k, seed=seed)
            with torch.no_grad():
                X = p.right_inverse(target)
                W64 = p(X)
                W32 = p(X.float())
            e64 = min_eigenvalue(W64)
            e32 = min_eigenvalue(W32, dtype=torch.float64)
            chol_fail = torch.linalg.cholesky_ex(W32).info > 0
            cols["frac_not_pd_f32"].append(float((e32 <= 0).double().mean()))
            cols["frac_not_pd_f64"].append(float((e64 <= 0).double().mean()))
            cols["frac_cholesky_fail_f32"].append(float(chol_fail.double().mean()))
            cols["min_eig_f32"].append(float(e32.min()))
            cols["min_eig_f64"].append(float(e64.min()))
            if first[name] is None and bool((e32 <= 0).any()) and bool((e64 > 0).all()):
                first[name] = k
        out[name] = cols
    out["first_failure_log10_cond"] = first
    return out


def _spd_loss(W: torch.Tensor, target: torch.Tensor, denom: torch.Tensor) -> torch.Tensor:
    return (W - target).square().sum() / denom


class SPDFit:
    """Fitting an SPD `target` (… × n × n) through a parametrization, one step at a time.

    The loss is the relative squared Frobenius error ‖W − T‖² / ‖T‖² over the whole batch,
    starting from the identity. Goes through `register_parametrization` on a holder module,
    as a user would. `step()` returns the loss before its update (the Problem protocol).
    """

    def __init__(
        self,
        target: torch.Tensor,
        parametrization: nn.Module | str = "cholesky",
        *,
        lr: float = 0.1,
        optimizer: str = "adam",
        momentum: float = 0.9,
    ) -> None:
        from torch.nn.utils import parametrize

        _check_square(target, "fit_spd")
        if optimizer not in ("adam", "sgd"):
            raise ValueError(f"fit_spd: optimizer must be 'adam' or 'sgd', got {optimizer!r}")
        param = (
            make_parametrization(parametrization)
            if isinstance(parametrization, str)
            else parametrization
        )
        self.target = target.detach()
        eye = torch.eye(target.shape[-1], dtype=target.dtype, device=target.device)
        self.holder = nn.Module()
        self.holder.weight = nn.Parameter(eye.expand_as(self.target).clone())
        parametrize.register_parametrization(self.holder, "weight", param)
        (self.raw,) = self.holder.parameters()  # the raw parameter behind the weight
        self.opt: torch.optim.Optimizer
        if optimizer == "adam":
            self.opt = torch.optim.Adam([self.raw], lr=lr)
        else:
            self.opt = torch.optim.SGD([self.raw], lr=lr, momentum=momentum)
        self.denom = self.target.square().sum()

    def loss(self) -> torch.Tensor:
        return _spd_loss(cast(torch.Tensor, self.holder.weight), self.target, self.denom)

    def step(self) -> torch.Tensor:
        """Compute the loss, take one optimizer step, return the loss (before the update)."""
        loss = self.loss()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return loss.detach()

    def result(self) -> torch.Tensor:
        """The current SPD weight."""
        with torch.no_grad():
            return cast(torch.Tensor, self.holder.weight).detach().clone()


def fit_spd(
    target: torch.Tensor,
    parametrization: nn.Module | str = "cholesky",
    steps: int = 1000,
    lr: float = 0.1,
    optimizer: str = "adam",
    target_loss: float = 1e-8,
    *,
    momentum: float = 0.9,
    on_step: Callable[[int, float], None] | None = None,
) -> dict[str, Any]:
    """Fit an SPD `target` with `SPDFit` until the loss is ≤ `target_loss` or `steps` updates.

    `on_step(t, loss)` is called before update t (loss as float). Returns `losses`
    (losses[t] after t updates), `steps` (updates performed), `converged`, `final_loss`,
    `weight` (the fitted W) and `raw` (the raw parameter), both detached.
    """
    if steps < 0:
        raise ValueError(f"fit_spd: steps must be >= 0, got {steps}")
    fit = SPDFit(target, parametrization, lr=lr, optimizer=optimizer, momentum=momentum)
    losses: list[float] = []
    converged = False
    done = 0
    for t in range(steps):
        loss = fit.loss()
        value = float(loss.detach())
        losses.append(value)
        if on_step is not None:
            on_step(t, value)
        if value <= target_loss:
            converged = True
            break
        fit.opt.zero_grad()
        loss.backward()
        fit.opt.step()
        done = t + 1
    return {
        "losses": losses,
        "steps": done,
        "converged": converged,
        "final_loss": losses[-1] if losses else float("nan"),
        "weight": fit.result(),
        "raw": fit.raw.detach().clone(),
    }
