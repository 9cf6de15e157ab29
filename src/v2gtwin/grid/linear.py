"""A feeder linearised around its exact base-case solution, step by step: the model that operating envelopes and
network-constrained schedules share.

For extra bus powers ``dp_kw``, ``dq_kvar`` (n_steps, n_bus; + consumption) on top of the base load, the
voltage and branch flows are estimated as

* ``v_pu ~ v0_pu - (R_pu @ dp + X_pu @ dq) / (S_base * v0_pu)`` (LinDistFlow sensitivities, Baran & Wu 1989,
  taken at the exact base-case voltage of each bus and step), and
* ``p_branch_kw ~ p0_branch_kw + A^T dp`` (the branch feeding bus ``b`` carries every power of its subtree),

where ``R_pu[j, m]`` is the common-path resistance of buses ``j`` and ``m`` and ``A`` the ancestor matrix of the
feeder. The base case ``v0_pu``, ``p0_branch_kw`` ... comes from the exact backward/forward sweep, so the
model is exact at ``dp = 0``. Its error is first order where base flows are large (the change of the losses,
which LinDistFlow drops: about 6 % of a voltage change on Baran & Wu's feeder at its peak, 3 % at half load)
and grows with ``dp``: every user of this model verifies its result with the exact power flow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from v2gtwin.errors import DataError
from v2gtwin.grid.feeder import S_BASE_KVA, Feeder, PowerFlowResult, run_powerflow

__all__ = ["LinearFeederModel", "calc_linear_model"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class LinearFeederModel:
    """A feeder linearised around the exact solution of its base load at every step.

    Attributes
    ----------
    feeder : the feeder.
    base : exact power flow of the base load (``v_pu``, ``i_branch_a``, ``p_branch_kw`` ... (n_steps, n_bus)).
    r_path_pu, x_path_pu : common-path resistance / reactance matrices (n_bus, n_bus) [pu of the feeder's
        impedance base].
    ancestors : sparse (n_bus, n_bus) matrix, ``A[j, b] = 1`` when branch ``b`` lies on the path to bus ``j``.
    """

    feeder: Feeder
    base: PowerFlowResult
    r_path_pu: FloatArray
    x_path_pu: FloatArray
    ancestors: Any

    @property
    def v0_pu(self) -> FloatArray:
        """Exact base-case voltages (n_steps, n_bus) [pu]."""
        return self.base.v_pu

    def dv_dp_pu_per_kw(self, step: int) -> FloatArray:
        """Sensitivity ``dV_j / dp_m`` of the voltage at bus j to extra load at bus m at ``step``, shape
        (n_bus, n_bus) [pu/kW] (negative: load lowers the voltage)."""
        return -self.r_path_pu / (S_BASE_KVA * self.base.v_pu[step][:, None])

    def dv_dq_pu_per_kvar(self, step: int) -> FloatArray:
        """Sensitivity ``dV_j / dq_m`` at ``step``, shape (n_bus, n_bus) [pu/kvar]."""
        return -self.x_path_pu / (S_BASE_KVA * self.base.v_pu[step][:, None])

    def calc_v_pu(self, dp_kw: npt.ArrayLike, dq_kvar: npt.ArrayLike | None = None) -> FloatArray:
        """Linear estimate of the bus voltages (n_steps, n_bus) [pu] with extra powers (n_steps, n_bus) [kW], [kvar]."""
        dp = np.asarray(dp_kw, dtype=float)
        dq = np.zeros_like(dp) if dq_kvar is None else np.asarray(dq_kvar, dtype=float)
        if dp.shape != self.base.v_pu.shape or dq.shape != dp.shape:
            raise DataError(f"dp_kw, dq_kvar: expected shape {self.base.v_pu.shape}, got {dp.shape}, {dq.shape}")
        drop = (dp @ self.r_path_pu.T + dq @ self.x_path_pu.T) / S_BASE_KVA
        return np.asarray(self.base.v_pu - drop / self.base.v_pu)

    def calc_p_branch_kw(self, dp_kw: npt.ArrayLike) -> FloatArray:
        """Linear estimate of the active power entering each branch (n_steps, n_bus) [kW] (losses held at base)."""
        dp = np.asarray(dp_kw, dtype=float)
        return np.asarray(self.base.p_branch_kw + (self.ancestors.T @ dp.T).T)

    def calc_q_branch_kvar(self, dq_kvar: npt.ArrayLike) -> FloatArray:
        """Linear estimate of the reactive power entering each branch (n_steps, n_bus) [kvar]."""
        dq = np.asarray(dq_kvar, dtype=float)
        return np.asarray(self.base.q_branch_kvar + (self.ancestors.T @ dq.T).T)


def calc_linear_model(feeder: Feeder, p_base_kw: npt.ArrayLike, q_base_kvar: npt.ArrayLike) -> LinearFeederModel:
    """Linearise ``feeder`` around the exact solution of its base load (n_steps, n_bus) [kW], [kvar].

    Dense path matrices: meant for feeders of up to a few thousand buses (the operating-envelope and schedule
    studies of this package use feeders of 33 to a few hundred buses).

    References
    ----------
    M. E. Baran and F. F. Wu, "Network reconfiguration in distribution systems for loss reduction and load
    balancing", IEEE Trans. Power Delivery 4(2), 1989 (DistFlow equations, without the loss terms).
    """
    base = run_powerflow(feeder, p_base_kw, q_base_kvar)
    return LinearFeederModel(
        feeder=feeder,
        base=base,
        r_path_pu=feeder.path_resistance_ohm() / feeder.z_base_ohm,
        x_path_pu=feeder.path_reactance_ohm() / feeder.z_base_ohm,
        ancestors=feeder.ancestors_sparse(),
    )
