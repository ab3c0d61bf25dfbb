"""The manifest of a Mini-Comballaz render folder (``out/mini_comballaz.json``): what makes two renders one
folder's (seed, size, format version, ray-casting settings), and the errors of a folder holding another render."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from topoloc.procedural.renderer import RenderConfig

__all__ = ["MANIFEST_FILE", "OtherPosesError", "RenderFolderError", "check_manifest"]

#: The manifest's name in a render folder.
MANIFEST_FILE = "mini_comballaz.json"


class RenderFolderError(ValueError):
    """A render folder holds another render than the one asked for: of another seed, size or format version
    (``path``: its manifest), or at other poses (`OtherPosesError`)."""

    def __init__(self, message: str, path: Path) -> None:
        super().__init__(message)
        self.path = path


class OtherPosesError(RenderFolderError):
    """A flight folder holds a render of other poses than those asked for; ``path``: its pose file or folder."""


def check_manifest(out: Path, meta: dict) -> bool:
    """Whether ``out`` holds a manifest; refuses (`RenderFolderError`) one of another seed, size, format version or
    ray-casting settings (`RenderConfig`) than ``meta``'s."""
    path = out / MANIFEST_FILE
    if path.is_file():
        try:
            old = json.loads(path.read_text())
            if not isinstance(old, dict):
                raise ValueError(f"a JSON {type(old).__name__}, expected an object")
        except (UnicodeDecodeError, ValueError) as err:  # json.JSONDecodeError is a ValueError
            raise RenderFolderError(f"{path}: not a Mini-Comballaz manifest ({err}); expected the JSON object a "
                                    "render writes (seed, width, height, version), which tells what the folder's "
                                    "views are; render into another folder", path) from err
        for what, keys in (("seed", ("seed",)), ("size", ("width", "height")), ("format version", ("version",))):
            held, asked = (tuple(d.get(k) for k in keys) for d in (old, meta))
            if held != asked:
                was, wants = ("x".join(map(str, v)) if what == "size" else repr(v[0]) for v in (held, asked))
                raise RenderFolderError(f"out_dir {out}: holds a Mini-Comballaz render of {what} {was}, asked for "
                                        f"{wants}; use another folder (a folder holds one seed, size and version)",
                                        path)
        # ray-casting settings: recorded since 2026-12-07; a manifest without them was written with the defaults
        # (nothing else could resume it without mixing settings unseen)
        held_config = {**dataclasses.asdict(RenderConfig()), **(old.get("render_config") or {})}
        for key, asked in meta.get("render_config", {}).items():
            if held_config.get(key) != asked:
                raise RenderFolderError(f"out_dir {out}: holds a Mini-Comballaz render with {key} "
                                        f"{held_config.get(key)!r}, asked for {asked!r} (RenderConfig); use another "
                                        f"folder or the same setting",
                                        path)
        return True
    return False
