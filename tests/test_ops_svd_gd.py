"""SVD by gradient descent: recovery against NumPy, the seed's published figures, the loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eigenbench.ops.svd_gd import SEED_MATRICES, SVDResult, compare_with_svd, svd_gd, svd_gd_loss

# From the seed (001): torch.svd of its matrix 1 printed these singular values.
SEED_M1_SINGULAR_VALUES = [2.3398, 0.6873, 0.2592, 0.1177]


def test_seed_matrices_have_the_seed_shapes_and_values() -> None:
    shapes = {name: tuple(f().shape) for name, f in SEED_MATRICES.items()}
    assert shapes == {
        "m1_5x4": (5, 4),
        "m2_4x4": (4, 4),
        "m3_7x4": (7, 4),
        "m4_3x4T": (4, 3),
        "m5_4x3": (4, 3),
    }
    m1 = SEED_MATRICES["m1_5x4"]()
    assert m1.dtype == torch.float32
    np.testing.assert_allclose(
        np.linalg.svd(m1.numpy(), compute_uv=False), SEED_M1_SINGULAR_VALUES, atol=6e-5
    )
    # the fourth is the transpose of a 3×4 draw; the fifth is a 4×3 draw from the same seed
    assert not torch.equal(SEED_MATRICES["m4_3x4T"](), SEED_MATRICES["m5_4x3"]())
    assert torch.equal(SEED_MATRICES["m1_5x4"](), m1)  # factories are deterministic


def test_recovers_singular_values_and_factors_of_a_5x4_matrix() -> None:
    A = SEED_MATRICES["m1_5x4"]().double()
    res = svd_gd(A, optimizer="sgd", lr=0.9, momentum=0.95, steps=3000, tol=1e-14)
    assert res.converged
    assert res.steps < 3000
    U, s, Vh = np.linalg.svd(A.numpy(), full_matrices=False)
    np.testing.assert_allclose(res.S.numpy(), s, atol=1e-6)
    sign = np.sign(np.sum(res.U.numpy() * U, axis=0))
    np.testing.assert_allclose(res.U.numpy() * sign, U, atol=1e-4)
    np.testing.assert_allclose(res.V.numpy() * sign, Vh.T, atol=1e-4)
    cmp = compare_with_svd(A, res)
    assert cmp["sv_max_abs_err"] < 1e-6
    assert cmp["u_max_abs_err"] < 1e-4
    assert cmp["v_max_abs_err"] < 1e-4
    assert cmp["recon_max_abs_err"] < 1e-5


def test_seed_settings_reach_1e_6_when_the_seed_says() -> None:
    # Seed 001's loss curve for matrix 1 (SGD lr 0.9, momentum 0.9, init seed 314, float32)
    # first drops below 1e-6 at iteration 2,023.
    res = svd_gd(SEED_MATRICES["m1_5x4"](), steps=2500, tol=1e-6)
    assert res.converged
    assert res.first_below_tol is not None
    assert abs(res.first_below_tol - 2023) <= 40
    assert res.steps == res.first_below_tol == len(res.losses) - 1
    assert res.losses[-1] < 1e-6 <= min(res.losses[:-1])


def test_loss_matches_its_definition() -> None:
    g = torch.Generator().manual_seed(0)
    A, U, a, V = (
        torch.rand(s, generator=g, dtype=torch.float64) for s in [(5, 3), (5, 3), (3,), (3, 3)]
    )
    s2 = a.numpy() ** 2
    un, vn = U.numpy(), V.numpy()
    recon = np.mean((un @ np.diag(s2) @ vn.T - A.numpy()) ** 2)
    pen = np.mean((un.T @ un - np.eye(3)) ** 2) + np.mean((vn @ vn.T - np.eye(3)) ** 2)
    assert float(svd_gd_loss(A, U, a, V)) == pytest.approx(recon + pen / 100, rel=1e-12)
    Vr = V[:, :2]  # non-square V: the penalty uses VᵀV
    pen_r = np.mean((un[:, :2].T @ un[:, :2] - np.eye(2)) ** 2) + np.mean(
        (vn[:, :2].T @ vn[:, :2] - np.eye(2)) ** 2
    )
    recon_r = np.mean((un[:, :2] @ np.diag(s2[:2]) @ vn[:, :2].T - A.numpy()) ** 2)
    assert float(svd_gd_loss(A, U[:, :2], a[:2], Vr)) == pytest.approx(
        recon_r + pen_r / 100, rel=1e-12
    )


def test_check_every_and_on_step_keep_the_same_history() -> None:
    A = SEED_MATRICES["m4_3x4T"]().double()
    seen: list[tuple[int, float]] = []
    one = svd_gd(A, steps=900, tol=1e-6, on_step=lambda t, v: seen.append((t, v)))
    many = svd_gd(A, steps=900, tol=1e-6, check_every=64)
    assert one.converged and many.converged
    assert one.first_below_tol == many.first_below_tol == one.steps
    assert many.steps >= many.first_below_tol
    assert many.steps % 64 == 63 or many.steps == 899  # stops at a check
    assert len(many.losses) == many.steps + 1
    assert many.losses[: len(one.losses)] == one.losses
    assert seen == list(enumerate(one.losses))


def test_without_convergence_all_steps_run() -> None:
    res = svd_gd(SEED_MATRICES["m2_4x4"](), steps=50, tol=0.0)
    assert not res.converged
    assert res.first_below_tol is None
    assert res.steps == len(res.losses) == 50
    assert list(res.S.numpy()) == sorted(res.S.numpy(), reverse=True)
    assert bool((res.S >= 0).all())


def test_divergence_stops_the_loop() -> None:
    res = svd_gd(SEED_MATRICES["m1_5x4"]().double(), lr=1.5, steps=2000, tol=1e-10)
    assert res.diverged and not res.converged
    assert res.steps < 2000
    assert not np.isfinite(res.losses[-1])
    assert np.isfinite(res.losses[:-1]).all()


def test_adam_with_rank_truncation_finds_the_leading_pair() -> None:
    A = SEED_MATRICES["m3_7x4"]().double()
    res = svd_gd(A, optimizer="adam", lr=3e-2, steps=600, tol=0.0, rank=2)
    assert res.U.shape == (7, 2) and res.V.shape == (4, 2) and res.S.shape == (2,)
    s = np.linalg.svd(A.numpy(), compute_uv=False)
    floor = float(np.sum(s[2:] ** 2) / A.numel())  # best rank-2 reconstruction mse
    assert floor <= res.losses[-1] < 1.01 * floor
    np.testing.assert_allclose(res.S.numpy(), s[:2], atol=1e-2)


def test_compare_with_svd_is_sign_and_order_invariant() -> None:
    A = torch.rand(6, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    U, s, Vh = torch.linalg.svd(A, full_matrices=False)
    perm = torch.tensor([2, 0, 3, 1])
    flip = torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=torch.float64)
    exact = SVDResult(
        U=(U * flip)[:, perm],
        S=s[perm],
        V=(Vh.T * flip)[:, perm],
        losses=[],
        steps=0,
        converged=True,
    )
    cmp = compare_with_svd(A, exact)
    for key in (
        "sv_max_abs_err",
        "u_max_abs_err",
        "v_max_abs_err",
        "recon_max_abs_err",
        "u_orth_err",
    ):
        assert cmp[key] < 1e-12, key
    bad = SVDResult(U=U, S=s + 0.1, V=Vh.T.flip(1), losses=[], steps=0, converged=True)
    cmp_bad = compare_with_svd(A, bad)
    assert cmp_bad["sv_max_abs_err"] == pytest.approx(0.1, abs=1e-12)
    assert cmp_bad["v_max_abs_err"] > 0.1
    assert cmp_bad["recon_max_abs_err"] > 0.05


def test_bad_inputs_raise_clear_errors() -> None:
    A = torch.rand(4, 3)
    with pytest.raises(ValueError, match="optimizer"):
        svd_gd(A, optimizer="lbfgs")
    with pytest.raises(ValueError, match="2-D"):
        svd_gd(torch.rand(2, 3, 3))
    with pytest.raises(ValueError, match="rank"):
        svd_gd(A, rank=4)
    with pytest.raises(TypeError, match="floating"):
        svd_gd(torch.ones(3, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="check_every"):
        svd_gd(A, check_every=0)
