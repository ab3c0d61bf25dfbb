"""Pure batched sim-to-real functions: no randomness inside, one parameter tensor per image.

Every function takes float ``(B, 3, H, W)`` images in ``[0, 1]`` and returns images of the same
shape and dtype, clamped to ``[0, 1]``, computed on the input's device. The noise fields they draw
clouds, snow patches and sensor noise from are in :mod:`augment.functional.noise` (deterministic
functions of per-image seeds, offsets and scales).
"""

from augment.functional.abstraction import edge_abstraction, fourier_domain_adaptation
from augment.functional.appearance import camera_effects, illumination, season_shift
from augment.functional.noise import fractal_noise, perlin_noise, value_noise
from augment.functional.relight import downsample_normals, sun_direction, sun_relight, surface_normals
from augment.functional.weather import cloud_layer, haze, snow_cover

__all__ = [
    "camera_effects",
    "cloud_layer",
    "downsample_normals",
    "edge_abstraction",
    "fourier_domain_adaptation",
    "fractal_noise",
    "haze",
    "illumination",
    "perlin_noise",
    "season_shift",
    "snow_cover",
    "sun_direction",
    "sun_relight",
    "surface_normals",
    "value_noise",
]
