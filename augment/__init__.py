"""Sim-to-real augmentations for aerial images, batched on the GPU (kornia-native).

Every op exists as a pure batched function in :mod:`augment.functional` and as a kornia
augmentation (``p``, ``same_on_batch``, ``keepdim``, replay with ``params=``, masks passing
through ``AugmentationSequential``). :class:`SimToReal` composes them under one strength knob.
Adapters for albumentations live in :mod:`augment.albumentations` (needs albumentations).

`augment` never imports `topoloc`: it can be used in any pipeline.
"""

from augment import functional
from augment._base import SimToRealAugmentationBase
from augment.abstraction import RandomEdgeAbstraction
from augment.camera import RandomCameraEffects
from augment.clouds import RandomClouds
from augment.compose import SimToReal
from augment.fda import FourierDomainAdaptation
from augment.haze import RandomHaze
from augment.illumination import RandomIllumination
from augment.relight import RandomSunRelight
from augment.season import RandomSeasonShift
from augment.snow import RandomSnowCover

__all__ = [
    "FourierDomainAdaptation",
    "RandomCameraEffects",
    "RandomClouds",
    "RandomEdgeAbstraction",
    "RandomHaze",
    "RandomIllumination",
    "RandomSeasonShift",
    "RandomSnowCover",
    "RandomSunRelight",
    "SimToReal",
    "SimToRealAugmentationBase",
    "functional",
]
