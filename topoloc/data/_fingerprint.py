"""A dataset's fingerprint: what its decoded `ImageCache` is made of, so that a stale cache file is
rebuilt.

The fingerprint hashes the image files (resolved path, byte size, ``mtime_ns`` and ``ctime_ns``), the
dataset's class, domains, read size and sample transform. A transform is told by what can be seen from outside: a
function by its name and code, a `functools.partial` by its function and arguments, any other object by
its settings (`settings_text`), never by a repr that holds a memory address (it changes from run to run).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import marshal
import os
import re
from typing import Any

import numpy as np
import torch

__all__ = ["settings_text", "source_key", "transform_key"]


def source_key(dataset: Any, size: tuple[int, int], version: str) -> str | None:
    """A hash of what a dataset's cache is made of, or None when the dataset lists no image files.

    Hashes ``version`` (the cache file's format), the cached size, each image file's resolved path, byte
    size, ``mtime_ns`` and ``ctime_ns`` (an edit whose mtime was set back still changes it; so do ``chmod`` and
    a rename, which then rebuild the cache), the dataset's class, domain(s), read size and transform.
    """
    paths = getattr(dataset, "image_paths", None)
    if paths is None:
        return None
    h = hashlib.sha256(f"{version}|{size}|{type(dataset).__name__}|{len(dataset)}".encode())
    parts = list(getattr(dataset, "datasets", None) or [dataset])
    for part in parts:
        transform = transform_key(getattr(part, "transform", None))
        h.update(f"|{getattr(part, 'domain', '')}|{getattr(part, 'image_size', '')}|{transform}".encode())
    for p in paths:
        try:
            st = os.stat(p)
            # ctime too: `tar x`, `cp -p` and `touch -r` set an edited file's mtime back, not its ctime
            h.update(f"\n{os.path.realpath(p)}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}".encode())
        except OSError:
            h.update(f"\n{p}|missing".encode())
    return h.hexdigest()


def transform_key(transform: Any, depth: int = 0) -> str:
    """What a sample transform does, as far as can be told from outside: a function by its name, code, defaults,
    closure and the module-level values its code reads (two lambdas share the name ``<lambda>``), a
    `functools.partial` by its function and arguments, a bound method by its function and its object, any other
    object by `settings_text`."""
    if transform is None:
        return "None"
    if isinstance(transform, functools.partial):
        return (f"partial({transform_key(transform.func, depth + 1)}, {settings_text(transform.args, depth + 1)}, "
                f"{settings_text(transform.keywords, depth + 1)})")
    if inspect.ismethod(transform):  # its code is its function's; what it does also depends on its object
        return f"method({transform_key(transform.__func__, depth + 1)}, {settings_text(transform.__self__, depth + 1)})"
    code = getattr(transform, "__code__", None)
    if code is not None:
        cells = tuple(c.cell_contents for c in transform.__closure__ or () if _has_contents(c))
        # the module-level values it reads (a GAIN = 3 at the top of a script), modules aside
        scope = getattr(transform, "__globals__", {})
        read = {n: scope[n] for n in code.co_names if n in scope and not inspect.ismodule(scope[n])}
        digest = hashlib.sha256(marshal.dumps(code)).hexdigest()[:16]
        return (f"{transform.__module__}.{transform.__qualname__}|{digest}|"
                f"{settings_text(transform.__defaults__, depth + 1)}|{settings_text(cells, depth + 1)}|"
                f"{settings_text(read, depth + 1)}")
    return settings_text(transform, depth)


def _has_contents(cell: Any) -> bool:
    try:
        cell.cell_contents
    except ValueError:  # a cell not yet filled
        return False
    return True


def settings_text(value: Any, depth: int = 0) -> str:
    """``value``'s settings as text that is the same in every run: an array or tensor by its shape, dtype and a
    digest of its values (a long one's repr elides most of them), a container item by item, an object whose
    repr shows an address (``<... at 0x7f...>``, which differs from run to run) by its class and attributes, any
    other value by its repr (an albumentations ``Compose`` or a torchvision transform shows its settings)."""
    if isinstance(value, np.ndarray) and value.dtype == object:
        return f"ndarray{value.shape}({settings_text(value.tolist(), depth + 1)})"
    if isinstance(value, (np.ndarray, torch.Tensor)):
        data = value.detach().cpu().contiguous().flatten().view(torch.uint8) if isinstance(value, torch.Tensor) \
            else np.ascontiguousarray(value).view(np.uint8)
        digest = hashlib.sha256(np.asarray(data).tobytes()).hexdigest()[:16]
        return f"{type(value).__name__}{tuple(value.shape)}{value.dtype}:{digest}"
    if depth > 12:  # a structure nested this deep (or a cycle): its class stands for it
        return type(value).__qualname__
    if isinstance(value, (list, tuple)):
        return f"{type(value).__name__}({', '.join(settings_text(v, depth + 1) for v in value)})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {settings_text(v, depth + 1)}" for k, v in value.items()) + "}"
    text = repr(value)
    if isinstance(value, torch.nn.Module):  # its repr shows its layers, not their weights
        return f"{text}|{settings_text(dict(value.state_dict()), depth + 1)}"
    if not re.search(r" at 0x[0-9a-fA-F]+", text):
        return text
    if getattr(value, "__code__", None) is not None or inspect.ismethod(value):
        return transform_key(value, depth + 1)  # a function among the settings: by its code, as a transform is
    state = getattr(value, "__dict__", None)
    return type(value).__qualname__ + (f"({settings_text(state, depth + 1)})" if isinstance(state, dict) else "")
