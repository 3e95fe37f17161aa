"""Head pose in degrees from the five SCRFD landmarks (Rekognition's ``Pose``).

The five points are fitted with ``cv2.solvePnP`` to a 3D mean face. Camera intrinsics are
approximated from the image: focal length = the image's longer side (a normal lens, about
53 degrees across), principal point = the centre of the face's landmarks. Centring on the
face makes the pose relative to the camera's line of sight to that face, which is what
the picture shows, and keeps it independent of where the face sits in the frame.

Sign convention (Rekognition's, checked against its documented sample record and published
responses): Yaw > 0 when the face turns towards the right of the image (the person's own
left); Pitch > 0 when the face tilts up; Roll > 0 when the head tilts clockwise in the
image (its right-hand eye lower). All three are degrees in -180..180.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from streamproc.faces.types import Pose

# The 3D mean face for (eyeLeft, eyeRight, nose, mouthLeft, mouthRight), in units of the
# eye distance; x right, y down, z away from the camera, so a frontal face has R = I.
# Source: insightface's ``meanshape_68.pkl`` (the mean 68-point 3D face its 1k3d68 model
# reports pose against): eye centres = means of the eye contours (points 36-41, 42-47),
# nose tip = point 30, mouth corners = 48 and 54; made left/right symmetric, then levelled
# by -18.89 degrees about x so that its frontal view best fits (least squares, similarity)
# insightface's ArcFace 5-point alignment template: pitch 0 is the head pose faces are
# aligned to for recognition. tests/test_pose.py derives these numbers again from both.
MEAN_FACE = np.array([
    [-0.5000, -0.5075, -0.0108],
    [0.5000, -0.5075, -0.0108],
    [0.0000, -0.0238, -0.4097],
    [-0.3948, 0.5194, 0.2157],
    [0.3948, 0.5194, 0.2157],
])

# Landmarks that the best-fitting mean face misses by more than this (RMS, as a fraction of
# the landmarks' own spread) are not a face pose the model can explain (real faces: < 0.12).
MAX_RESIDUAL = 0.25


def estimate_pose(landmarks: np.ndarray, image_size: tuple[int, int]) -> Pose:
    """Pose of a face from its five landmarks in an image of ``image_size`` (w, h).

    Never raises: landmarks that cannot be solved (degenerate, non-finite, or no pose of
    the mean face reprojects onto them) get :func:`fallback_pose` with ``solved=False``.
    """
    points = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    try:
        pose = _solve(points, image_size)
    except cv2.error:
        pose = None
    return pose if pose is not None else fallback_pose(points)


def _solve(points: np.ndarray, image_size: tuple[int, int]) -> Pose | None:
    if not np.isfinite(points).all():
        return None
    centre = points.mean(axis=0)
    spread = float(np.sqrt(((points - centre) ** 2).sum(axis=1).mean()))
    if spread < 1e-3:
        return None
    focal = float(max(image_size[0], image_size[1], 1))
    camera = np.array([[focal, 0.0, centre[0]], [0.0, focal, centre[1]], [0.0, 0.0, 1.0]])
    ok, rvec, tvec = cv2.solvePnP(MEAN_FACE, points, camera, None, flags=cv2.SOLVEPNP_SQPNP)
    if not ok:
        return None
    rvec, tvec = cv2.solvePnPRefineLM(MEAN_FACE, points, camera, None, rvec, tvec)
    projected, _ = cv2.projectPoints(MEAN_FACE, rvec, tvec, camera, None)
    residual = float(np.sqrt(((projected.reshape(5, 2) - points) ** 2).sum(axis=1).mean()))
    rotation = cv2.Rodrigues(rvec)[0]
    # In front of the camera, explained by the mean face, and facing the camera (a face
    # turned away from it cannot have been detected).
    if tvec[2, 0] <= 0 or residual > MAX_RESIDUAL * spread or rotation[2, 2] <= 0:
        return None
    rx, ry, rz = _euler_zyx(rotation)
    # Camera axes are x right, y down, z forward: turning towards image-right is a negative
    # rotation about y, tilting up a negative rotation about x.
    return Pose(roll=round(rz, 4), yaw=round(-ry, 4), pitch=round(-rx, 4))


def _euler_zyx(rotation: np.ndarray) -> tuple[float, float, float]:
    """Angles (x, y, z) in degrees with R = Rz @ Ry @ Rx.

    Roll is applied last, about the camera axis, so rotating the image in its plane moves
    roll by exactly that angle and leaves yaw and pitch alone.
    """
    r = rotation
    cos_y = math.hypot(r[0, 0], r[1, 0])
    if cos_y > 1e-6:
        x, z = math.atan2(r[2, 1], r[2, 2]), math.atan2(r[1, 0], r[0, 0])
    else:  # yaw at +-90: roll and pitch are one rotation; give it all to pitch
        x, z = math.atan2(-r[1, 2], r[1, 1]), 0.0
    y = math.atan2(-r[2, 0], cos_y)
    return math.degrees(x), math.degrees(y), math.degrees(z)


def fallback_pose(points: np.ndarray) -> Pose:
    """A coarse 2D reading for landmarks the mean face cannot explain.

    Roll from the eye line, yaw from the nose's sideways offset from the eyes' midpoint
    (saturating at +-90), pitch 0; marked ``solved=False`` so the quality filter refuses
    such a face with EXTREME_POSE. Non-finite landmarks give all zeros.
    """
    if not np.isfinite(points).all():
        return Pose(roll=0.0, yaw=0.0, pitch=0.0, solved=False)
    eye_l, eye_r, nose = points[0], points[1], points[2]
    dx, dy = eye_r - eye_l
    eye_dist = math.hypot(dx, dy)
    if eye_dist < 1e-6:
        return Pose(roll=0.0, yaw=0.0, pitch=0.0, solved=False)
    roll = math.atan2(dy, dx)
    # Sideways offset of the nose along the eye line, relative to half the eye distance.
    along = ((nose - (eye_l + eye_r) / 2) @ np.array([dx, dy])) / eye_dist
    yaw = math.degrees(math.asin(float(np.clip(2.0 * along / eye_dist, -1.0, 1.0))))
    return Pose(roll=round(math.degrees(roll), 4), yaw=round(yaw, 4), pitch=0.0, solved=False)
