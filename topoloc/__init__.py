"""topoloc: drone localisation from a single camera image.

Absolute pose regression in the AtLoc family on the EPFL TOPO drone data: position (ECEF,
WGS84, local ENU) and orientation (Cesium yaw / pitch / roll) from one image.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
