"""Sim-to-real augmentations for aerial images, batched on the GPU (kornia-native).

`augment` never imports `topoloc`: it can be used in any pipeline.
"""

__all__: list[str] = []
