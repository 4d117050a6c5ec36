"""Rotation maths shared by the whole library: quaternions (w, x, y, z) and the 6D representation.

Every function works on arrays with any leading shape. NumPy versions compute in the input's
float dtype (float64 recommended); the torch versions are differentiable and batched.
The 6D representation is the first two *columns* of the rotation matrix (Zhou et al. 2019),
as in HumanML3D.
"""

from __future__ import annotations

import numpy as np
import torch

# ----------------------------------------------------------------------------- numpy


def cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product of 3-vectors (..., 3), shapes broadcast: ``np.cross``'s arithmetic (the same
    results) without its axis handling, which costs more than the products on one clip's arrays."""
    a, b = np.asarray(a), np.asarray(b)
    out = np.empty(np.broadcast_shapes(a.shape, b.shape), np.result_type(a, b))
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    np.multiply(a1, b2, out=out[..., 0])
    out[..., 0] -= a2 * b1
    np.multiply(a2, b0, out=out[..., 1])
    out[..., 1] -= a0 * b2
    np.multiply(a0, b1, out=out[..., 2])
    out[..., 2] -= a1 * b0
    return out


def qmul(q: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Hamilton product ``q * r`` of quaternions (..., 4)."""
    w1, x1, y1, z1 = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    w2, x2, y2, z2 = r[..., 0], r[..., 1], r[..., 2], r[..., 3]
    return np.stack(
        (
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ),
        axis=-1,
    )


def qinv(q: np.ndarray) -> np.ndarray:
    """Conjugate (the inverse of a unit quaternion)."""
    return q * np.array([1.0, -1.0, -1.0, -1.0], dtype=q.dtype)


def qrot(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors v (..., 3) by unit quaternions q (..., 4); shapes broadcast."""
    qvec = q[..., 1:]
    uv = cross(qvec, v)
    uuv = cross(qvec, uv)
    return v + 2.0 * (q[..., :1] * uv + uuv)


def qnormalize(q: np.ndarray) -> np.ndarray:
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def qbetween(v0: np.ndarray, v1: np.ndarray) -> np.ndarray:
    """The shortest-arc unit quaternion rotating direction v0 onto v1 (..., 3)."""
    v = cross(v0, v1)
    w = np.sqrt((v0**2).sum(-1, keepdims=True) * (v1**2).sum(-1, keepdims=True)) + (v0 * v1).sum(
        -1, keepdims=True
    )
    return qnormalize(np.concatenate([w, v], axis=-1))


def qfix(q: np.ndarray) -> np.ndarray:
    """Flip signs along axis 0 (time) so consecutive quaternions have non-negative dot products."""
    out = q.copy()
    flips = np.cumsum((q[1:] * q[:-1]).sum(-1) < 0, axis=0) % 2 == 1
    out[1:][flips] *= -1
    return out


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """Unit quaternions (..., 4) -> rotation matrices (..., 3, 3)."""
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    s = 2.0 / (q * q).sum(-1)
    m = np.stack(
        (
            1 - s * (y * y + z * z),
            s * (x * y - z * w),
            s * (x * z + y * w),
            s * (x * y + z * w),
            1 - s * (x * x + z * z),
            s * (y * z - x * w),
            s * (x * z - y * w),
            s * (y * z + x * w),
            1 - s * (x * x + y * y),
        ),
        axis=-1,
    )
    return m.reshape(q.shape[:-1] + (3, 3))


def matrix_to_quat(m: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) -> unit quaternions (..., 4) with w >= 0 (Shepperd's method)."""
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    trace = m00 + m11 + m22
    cands = np.stack(
        (
            np.stack(
                (
                    1 + trace,
                    m[..., 2, 1] - m[..., 1, 2],
                    m[..., 0, 2] - m[..., 2, 0],
                    m[..., 1, 0] - m[..., 0, 1],
                ),
                -1,
            ),
            np.stack(
                (
                    m[..., 2, 1] - m[..., 1, 2],
                    1 + m00 - m11 - m22,
                    m[..., 0, 1] + m[..., 1, 0],
                    m[..., 0, 2] + m[..., 2, 0],
                ),
                -1,
            ),
            np.stack(
                (
                    m[..., 0, 2] - m[..., 2, 0],
                    m[..., 0, 1] + m[..., 1, 0],
                    1 - m00 + m11 - m22,
                    m[..., 1, 2] + m[..., 2, 1],
                ),
                -1,
            ),
            np.stack(
                (
                    m[..., 1, 0] - m[..., 0, 1],
                    m[..., 0, 2] + m[..., 2, 0],
                    m[..., 1, 2] + m[..., 2, 1],
                    1 - m00 - m11 + m22,
                ),
                -1,
            ),
        ),
        axis=-2,
    )
    best = np.argmax(np.stack((trace, m00, m11, m22), -1), axis=-1)
    q = np.take_along_axis(cands, best[..., None, None], axis=-2)[..., 0, :]
    q = qnormalize(q)
    return np.where(q[..., :1] < 0, -q, q)


def matrix_to_cont6d(m: np.ndarray) -> np.ndarray:
    """(..., 3, 3) -> (..., 6): first column then second column."""
    return np.concatenate([m[..., :, 0], m[..., :, 1]], axis=-1)


def quat_to_cont6d(q: np.ndarray) -> np.ndarray:
    return matrix_to_cont6d(quat_to_matrix(q))


def cont6d_to_matrix(d6: np.ndarray) -> np.ndarray:
    """(..., 6) -> (..., 3, 3) by Gram-Schmidt on the two columns."""
    x = d6[..., 0:3] / np.linalg.norm(d6[..., 0:3], axis=-1, keepdims=True)
    z = np.cross(x, d6[..., 3:6])
    z = z / np.linalg.norm(z, axis=-1, keepdims=True)
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=-1)


def swing_matrix(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The shortest-arc rotation matrices (..., 3, 3) taking directions u onto v (any lengths).

    Robust where u and v are (anti)parallel: opposite directions turn by pi about an axis normal to u.
    """
    u = u / np.linalg.norm(u, axis=-1, keepdims=True)
    v = v / np.linalg.norm(v, axis=-1, keepdims=True)
    u, v = np.broadcast_arrays(u, v)
    axis = np.cross(u, v)
    sin = np.linalg.norm(axis, axis=-1)
    cos = (u * v).sum(-1)
    # a fallback axis normal to u for the antiparallel case
    helper = np.where(np.abs(u[..., :1]) < 0.9, [1.0, 0.0, 0.0], [0.0, 1.0, 0.0])
    normal = np.cross(u, helper)
    normal = normal / np.linalg.norm(normal, axis=-1, keepdims=True)
    axis = np.where(sin[..., None] > 1e-9, axis / np.maximum(sin, 1e-12)[..., None], normal)
    angle = np.arctan2(sin, cos)
    return axis_angle_to_matrix(axis * angle[..., None])


def axis_angle_to_matrix(rotvec: np.ndarray) -> np.ndarray:
    """Rotation vectors (..., 3) (axis * angle in radians) -> matrices (..., 3, 3) (Rodrigues)."""
    angle = np.linalg.norm(rotvec, axis=-1)
    axis = rotvec / np.maximum(angle, 1e-12)[..., None]
    x, y, z = np.moveaxis(axis, -1, 0)
    zero = np.zeros_like(x)
    k = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1).reshape(axis.shape[:-1] + (3, 3))
    s = np.sin(angle)[..., None, None]
    c = np.cos(angle)[..., None, None]
    eye = np.broadcast_to(np.eye(3), k.shape)
    return eye + s * k + (1 - c) * (k @ k)


def yaw_quat(angle: np.ndarray) -> np.ndarray:
    """Rotation about +Y by ``2 * angle``: HumanML3D stores yaw as the half angle."""
    zero = np.zeros_like(angle)
    return np.stack([np.cos(angle), zero, np.sin(angle), zero], axis=-1)


# ----------------------------------------------------------------------------- torch


def qmul_t(q: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Hamilton product of quaternion tensors (..., 4)."""
    w1, x1, y1, z1 = q.unbind(-1)
    w2, x2, y2, z2 = r.unbind(-1)
    return torch.stack(
        (
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ),
        dim=-1,
    )


def qinv_t(q: torch.Tensor) -> torch.Tensor:
    return q * q.new_tensor([1.0, -1.0, -1.0, -1.0])


def qrot_t(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Rotate v (..., 3) by unit quaternions q (..., 4); leading shapes broadcast."""
    shape = torch.broadcast_shapes(q.shape[:-1], v.shape[:-1])
    q = q.expand(shape + (4,))
    v = v.expand(shape + (3,))
    qvec = q[..., 1:]
    uv = torch.linalg.cross(qvec, v)
    uuv = torch.linalg.cross(qvec, uv)
    return v + 2.0 * (q[..., :1] * uv + uuv)


def yaw_quat_t(angle: torch.Tensor) -> torch.Tensor:
    zero = torch.zeros_like(angle)
    return torch.stack([torch.cos(angle), zero, torch.sin(angle), zero], dim=-1)


def cont6d_to_matrix_t(d6: torch.Tensor) -> torch.Tensor:
    x = torch.nn.functional.normalize(d6[..., 0:3], dim=-1)
    z = torch.nn.functional.normalize(torch.linalg.cross(x, d6[..., 3:6]), dim=-1)
    y = torch.linalg.cross(z, x)
    return torch.stack([x, y, z], dim=-1)
