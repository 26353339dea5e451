"""SVD computed by gradient descent on a penalised reconstruction loss (seeds 001 and 003).

For an m×n matrix A and rank r (default min(m, n)) the parameters are U (m×r), a (r) and
V (n×r), with singular values s = a² (non-negative through the square). The loss is

    mse(U diag(a²) Vᵀ, A) + mse(UᵀU, I_r) / 100 + mse(G_V, I) / 100,

where mse is the mean of squared entries and G_V = V Vᵀ when V is square (as in the seed),
VᵀV otherwise. The seed initialises U, a, V with `torch.rand` after `torch.manual_seed(314)`
(in that order, float32) and runs heavy-ball SGD with lr 0.9 and momentum 0.9 for 20,000
steps; its hand-rolled update (p -= lr·grad, then grad *= 0.9) is `torch.optim.SGD`
with momentum. Its variant 02b uses Adam (default lr 1e-3, weight decay 1e-5).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

SEED_INIT_SEED = 314
"""The seed re-seeds with 314 before initialising U, a, V for every matrix."""
SEED_STEPS = 20_000
SEED_LR = {"sgd": 0.9, "adam": 1e-3}
SEED_MOMENTUM = 0.9
PENALTY_SCALE = 1.0 / 100.0
OPTIMIZERS = ("sgd", "adam")


def _seed_rand(shape: tuple[int, int], seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g)


SEED_MATRICES: dict[str, Callable[[], torch.Tensor]] = {
    "m1_5x4": lambda: _seed_rand((5, 4), 314),
    "m2_4x4": lambda: _seed_rand((4, 4), 315),
    "m3_7x4": lambda: _seed_rand((7, 4), 316),
    "m4_3x4T": lambda: _seed_rand((3, 4), 317).T.contiguous(),
    "m5_4x3": lambda: _seed_rand((4, 3), 317),
}
"""The seed's five float32 test matrices, regenerated exactly (`torch.rand` after
`torch.manual_seed(s)`, s = 314…317; the fourth is `rand(3, 4)ᵀ`, the fifth `rand(4, 3)`)."""


@dataclass
class SVDResult:
    """Factors sorted by descending singular value, and the optimisation record."""

    U: torch.Tensor
    S: torch.Tensor
    V: torch.Tensor
    losses: list[float]
    """Loss before each update: losses[t] is the loss after t updates."""
    steps: int
    """Updates performed."""
    converged: bool
    first_below_tol: int | None = None
    """Smallest t with losses[t] < tol (the iterations to tolerance), or None."""
    diverged: bool = False
    """The loss became NaN or infinite; the loop stopped at the next check."""


def svd_gd_loss(
    A: torch.Tensor,
    U: torch.Tensor,
    a: torch.Tensor,
    V: torch.Tensor,
    eyes: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """The seed's loss: reconstruction mse plus orthonormality mse terms scaled by 1/100.

    `eyes` = (I for UᵀU, I for the V Gram matrix) may be passed to avoid rebuilding them.
    """
    square_v = V.shape[0] == V.shape[1]
    if eyes is None:
        eyes = _eyes(U, V)
    recon = ((U * (a * a)) @ V.T - A).square().mean()
    pen_u = (U.T @ U - eyes[0]).square().mean()
    pen_v = ((V @ V.T if square_v else V.T @ V) - eyes[1]).square().mean()
    return recon + PENALTY_SCALE * (pen_u + pen_v)


def _eyes(U: torch.Tensor, V: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r = U.shape[1]
    n_v = V.shape[0] if V.shape[0] == V.shape[1] else r
    return (
        torch.eye(r, dtype=U.dtype, device=U.device),
        torch.eye(n_v, dtype=V.dtype, device=V.device),
    )


def _check_args(
    A: torch.Tensor, optimizer: str, steps: int, rank: int | None, check_every: int
) -> int:
    if not isinstance(A, torch.Tensor):
        raise TypeError(f"svd_gd: A must be a torch.Tensor, got {type(A).__name__}")
    if A.ndim != 2 or A.numel() == 0:
        raise ValueError(f"svd_gd: A must be a non-empty 2-D matrix, got shape {tuple(A.shape)}")
    if not A.is_floating_point():
        raise TypeError(f"svd_gd: A must have a floating dtype, got {A.dtype}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"svd_gd: optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    if steps < 0:
        raise ValueError(f"svd_gd: steps must be >= 0, got {steps}")
    if check_every < 1:
        raise ValueError(f"svd_gd: check_every must be >= 1, got {check_every}")
    m, n = A.shape
    r = min(m, n) if rank is None else rank
    if not 1 <= r <= min(m, n):
        raise ValueError(f"svd_gd: rank must be in [1, {min(m, n)}] for shape {(m, n)}, got {r}")
    return r


def _init_params(
    A: torch.Tensor, r: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """U, a, V drawn like the seed (float32 U[0, 1), in that order), then cast to A's dtype."""
    m, n = A.shape
    g = torch.Generator().manual_seed(seed)
    U = torch.rand((m, r), generator=g)
    a = torch.rand((r,), generator=g)
    V = torch.rand((n, r), generator=g)
    return tuple(  # type: ignore[return-value]
        p.to(dtype=A.dtype, device=A.device).requires_grad_(True) for p in (U, a, V)
    )


def _scan(buf: torch.Tensor, start: int, stop: int, tol: float) -> tuple[int | None, bool]:
    """(first t in [start, stop) with loss < tol or None, whether any loss there is non-finite)."""
    if stop - start == 1:
        v = float(buf[start])
        return (start if v < tol else None), not math.isfinite(v)
    window = buf[start:stop]
    hits = torch.nonzero(window < tol)
    first = None if hits.numel() == 0 else start + int(hits[0, 0])
    return first, bool((~torch.isfinite(window)).any())


class SVDDescent:
    """One SVD-by-descent optimisation, stepped by the caller (the Problem protocol).

    `step()` computes the loss, takes one optimizer step and returns the loss before it;
    `result()` gives the factors sorted by descending singular value.
    """

    def __init__(
        self,
        A: torch.Tensor,
        *,
        optimizer: str = "sgd",
        lr: float | None = None,
        seed: int = SEED_INIT_SEED,
        rank: int | None = None,
        momentum: float = SEED_MOMENTUM,
        weight_decay: float = 0.0,
    ) -> None:
        r = _check_args(A, optimizer, 0, rank, 1)
        lr = SEED_LR[optimizer] if lr is None else lr
        self.A = A
        self.U, self.a, self.V = _init_params(A, r, seed)
        params = [self.U, self.a, self.V]
        self.opt: torch.optim.Optimizer
        if optimizer == "sgd":
            self.opt = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
        else:
            self.opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
        self.eyes = _eyes(self.U, self.V)

    def loss(self) -> torch.Tensor:
        return svd_gd_loss(self.A, self.U, self.a, self.V, self.eyes)

    def update(self, loss: torch.Tensor) -> None:
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()

    def step(self) -> torch.Tensor:
        loss = self.loss()
        self.update(loss)
        return loss.detach()

    def factors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(U, S, V) sorted by descending singular value S = a²."""
        with torch.no_grad():
            s = self.a.detach() * self.a.detach()
            order = torch.argsort(s, descending=True)
            return self.U.detach()[:, order], s[order], self.V.detach()[:, order]

    def result(self) -> SVDResult:
        U, S, V = self.factors()
        return SVDResult(U=U, S=S, V=V, losses=[], steps=0, converged=False)


def svd_gd(
    A: torch.Tensor,
    *,
    optimizer: str = "sgd",
    lr: float | None = None,
    steps: int = SEED_STEPS,
    tol: float = 1e-10,
    seed: int = SEED_INIT_SEED,
    rank: int | None = None,
    momentum: float = SEED_MOMENTUM,
    weight_decay: float = 0.0,
    check_every: int = 1,
    on_step: Callable[[int, float], None] | None = None,
) -> SVDResult:
    """Fit U diag(a²) Vᵀ ≈ A by gradient descent; stop once the loss is below `tol`.

    Defaults are the seed's (SGD, lr 0.9, momentum 0.9, 20,000 steps, init seed 314); `lr`
    None means 0.9 for "sgd" and 1e-3 for "adam". `momentum` applies to "sgd" only; the
    seed's Adam variant used `weight_decay=1e-5`. A NaN or infinite loss stops the loop
    (`diverged`).

    The loss is read back every `check_every` steps (one host sync each), so on a GPU a
    larger value keeps the loop asynchronous; the tolerance is then noticed up to
    `check_every - 1` updates late (`first_below_tol` stays exact). `on_step(t, loss)` is
    called before update t with the loss as a float, which syncs every step.
    """
    _check_args(A, optimizer, steps, rank, check_every)
    fit = SVDDescent(
        A,
        optimizer=optimizer,
        lr=lr,
        seed=seed,
        rank=rank,
        momentum=momentum,
        weight_decay=weight_decay,
    )
    buf = torch.empty(steps, dtype=A.dtype, device=A.device)
    first: int | None = None
    diverged = False
    done = 0
    for t in range(steps):
        loss = fit.loss()
        buf[t] = loss.detach()
        if on_step is not None:
            on_step(t, float(buf[t]))
        if (t + 1) % check_every == 0 or t + 1 == steps:
            first, diverged = _scan(buf, t - t % check_every, t + 1, tol)
            if first is not None or diverged:
                break
        fit.update(loss)
        done = t + 1
    stopped_early = first is not None or diverged
    losses = [float(v) for v in buf[: done + 1 if stopped_early else done].tolist()]
    U, S, V = fit.factors()
    return SVDResult(
        U=U,
        S=S,
        V=V,
        losses=losses,
        steps=done,
        converged=first is not None,
        first_below_tol=first,
        diverged=diverged,
    )


def compare_with_svd(A: torch.Tensor, result: SVDResult) -> dict[str, float]:
    """Errors of `result` against float64 `torch.linalg.svd`, up to column signs and order.

    Columns are matched in descending singular-value order; each pair (u_k, v_k) gets the one
    sign that best aligns it with the reference (u and v flip together in an SVD). Factor
    errors mean little when singular values are close: see `min_sv_gap`.
    """
    A64 = A.detach().to(device="cpu", dtype=torch.float64)
    U = result.U.detach().to(device="cpu", dtype=torch.float64)
    S = result.S.detach().to(device="cpu", dtype=torch.float64)
    V = result.V.detach().to(device="cpu", dtype=torch.float64)
    r = S.shape[0]
    if U.shape != (A64.shape[0], r) or V.shape != (A64.shape[1], r):
        raise ValueError(
            f"compare_with_svd: factor shapes U {tuple(U.shape)}, V {tuple(V.shape)} do not fit "
            f"A {tuple(A64.shape)} with rank {r}"
        )
    order = torch.argsort(S, descending=True)
    U, S, V = U[:, order], S[order], V[:, order]
    Ur, Sr, Vhr = torch.linalg.svd(A64, full_matrices=False)
    Ur, Sr, Vr = Ur[:, :r], Sr[:r], Vhr[:r].T
    align = (U * Ur).sum(0) + (V * Vr).sum(0)
    sign = torch.where(align < 0, -1.0, 1.0).to(torch.float64)
    recon = (U * S) @ V.T
    eye = torch.eye(r, dtype=torch.float64)
    gaps = (Sr[:-1] - Sr[1:]).abs()
    return {
        "sv_max_abs_err": float((S - Sr).abs().max()),
        "sv_max_rel_err": float(
            ((S - Sr).abs() / Sr.clamp_min(torch.finfo(torch.float64).tiny)).max()
        ),
        "u_max_abs_err": float((U * sign - Ur).abs().max()),
        "v_max_abs_err": float((V * sign - Vr).abs().max()),
        "recon_max_abs_err": float((recon - A64).abs().max()),
        "recon_rel_fro_err": float(torch.linalg.norm(recon - A64) / torch.linalg.norm(A64)),
        "u_orth_err": float((U.T @ U - eye).abs().max()),
        "v_orth_err": float((V.T @ V - eye).abs().max()),
        "min_sv_gap": float(gaps.min()) if gaps.numel() else float("inf"),
    }
