"""The TOPO datasets by name: the Comballaz synthetic archive, Comballaz Air 2 and the EPFL Phantom flights.

Splits (deterministic, see :mod:`topoloc.data.splits`):

- :class:`ComballazSynthetic` (Latin-hypercube poses, independent of each other): every pose row
  is assigned on its own, 80 / 10 / 10 % train / val / test by default.
- :class:`ComballazAir`, :class:`EPFLPhantom` (real flights, sequences of neighbouring frames):
  within each flight, blocks of 25 consecutive rows are assigned 80 / 10 / 10 %, so that
  neighbouring near-duplicate frames do not sit on both sides of the split. For a split by flight
  (train on some flights, test on others: the harder, more honest test), choose ``flights=`` with
  ``split="all"``; the out-of-place flights (``OUT_OF_PLACE``) are meant for that.

``split_fractions``, ``split_seed`` and ``split_block`` change the defaults; a dict
``{flight: [rows]}`` gives explicit rows.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from topoloc.data.posed import check_flight_name, check_root, sample_index
from topoloc.data.topo import TopoFlight
from topoloc.geodesy import LocalFrame

__all__ = ["FlightCollection", "ComballazSynthetic", "ComballazAir", "EPFLPhantom"]


class FlightCollection(Dataset):
    """Several :class:`TopoFlight` of one area, concatenated; they must share one local frame.

    Args:
        flights: the flight datasets (non-empty).

    Attributes:
        frame: the shared LocalFrame. ``datasets``: the flights. ``names``: file stem per sample.
    """

    def __init__(self, flights: Sequence[TopoFlight]) -> None:
        if isinstance(flights, (TopoFlight, str, bytes)) or not isinstance(flights, Iterable):
            raise TypeError(f"flights: expected a list of TopoFlight, got {type(flights).__name__}"
                            + (" (one flight: [flight])" if isinstance(flights, TopoFlight) else ""))
        flights = list(flights)
        wrong = next((f for f in flights if not hasattr(f, "frame") or not hasattr(f, "names")), None)
        if wrong is not None:
            raise TypeError(f"flights: expected a list of TopoFlight, got a list holding {type(wrong).__name__} "
                            f"{wrong!r:.60}")
        if not flights:
            raise ValueError("flights: expected at least one TopoFlight")
        frames = {f.frame for f in flights}
        if len(frames) != 1:
            raise ValueError(
                f"flights: expected one shared local frame, got {[(f.flight, f.frame) for f in flights]}; pass frame="
            )
        self.datasets = flights
        self.frame: LocalFrame = flights[0].frame
        self._ends = np.cumsum([len(f) for f in flights]).tolist()
        self.names = [n for f in flights for n in f.names]

    def __len__(self) -> int:
        return self._ends[-1]

    def __getitem__(self, i: int) -> dict:
        i = sample_index(i, len(self))
        k = bisect.bisect_right(self._ends, i)
        return self.datasets[k][i - (self._ends[k - 1] if k else 0)]

    def poses(self) -> np.ndarray:
        """Camera-to-local-ENU poses of every sample, no image read. Shape: (N, 4, 4), metres."""
        return np.concatenate([f.poses() for f in self.datasets]) if len(self) else np.zeros((0, 4, 4))

    def cesium(self) -> np.ndarray:
        """Raw pose rows of every sample. Shape: (N, 6)."""
        return np.concatenate([f.cesium() for f in self.datasets]) if len(self) else np.zeros((0, 6))

    @property
    def rows(self) -> np.ndarray:
        """Pose row (in its flight's pose file) of every sample. Shape: (N,)."""
        return np.concatenate([f.rows for f in self.datasets])

    @property
    def flight_of(self) -> list[str]:
        """Flight name of every sample."""
        return [f.flight for f in self.datasets for _ in range(len(f))]

    @property
    def image_paths(self) -> list[Path]:
        """Every flight's image files, in sample order."""
        return [p for f in self.datasets for p in f.image_paths]

    def load_image(self, i: int):
        """The ``image`` of sample ``i`` without building the whole sample."""
        i = sample_index(i, len(self))  # int(1.5) read image 1
        k = bisect.bisect_right(self._ends, i)
        return self.datasets[k].load_image(i - (self._ends[k - 1] if k else 0))

    def __repr__(self) -> str:
        parts = ", ".join(f"{f.flight}: {len(f)}" for f in self.datasets)
        return f"{type(self).__name__}(n={len(self)}, {parts})"


class _AreaFlights(FlightCollection):
    """Real flights of one area found under ``root``: the shared constructor of ComballazAir and EPFLPhantom."""

    IN_PLACE: tuple[str, ...] = ()
    OUT_OF_PLACE: tuple[str, ...] = ()

    def __init__(
        self,
        root: str | Path,
        domain: str = "real",
        split: str | Mapping[str, Sequence[int]] = "all",
        image_size: tuple[int, int] | int | None = None,
        transform: Callable[[dict], dict] | None = None,
        flights: Sequence[str] | None = None,
        **kwargs,
    ) -> None:
        root = check_root(root)
        if flights is None:
            flights = [f for f in self.IN_PLACE if (root / f).is_dir()]
            if not flights:
                raise FileNotFoundError(
                    f"{root}: none of the {type(self).__name__} flight folders found; expected one or more of "
                    f"{list(self.IN_PLACE)}"
                )
        elif isinstance(flights, str) or not flights:
            raise ValueError(f"flights: expected a non-empty list of flight names, got {flights!r}")
        else:
            flights = [check_flight_name(f, f"flights[{i}]") for i, f in enumerate(flights)]
        splits: dict[str, str | Sequence[int]]  # per flight: a split name or its rows
        if isinstance(split, Mapping):
            unknown = set(split) - set(flights)
            if unknown:
                raise ValueError(f"split: rows given for flights {sorted(unknown)} that are not in "
                                 f"flights={list(flights)}")
            splits = {f: split.get(f, []) for f in flights}
        elif isinstance(split, str):
            splits = {f: split for f in flights}
        else:
            raise ValueError(f"split: expected a split name or a dict {{flight: rows}} for several flights, "
                             f"got {split!r}")
        super().__init__(
            [
                TopoFlight(root, f, domain=domain, split=splits[f], image_size=image_size, transform=transform,
                           **kwargs)
                for f in flights
            ]
        )
        self.root, self.domain, self.split = root, domain, split


class ComballazSynthetic(TopoFlight):
    """TOPO's synthetic Comballaz archive: 30,000 Latin-hypercube renders (flight ``comballaz-LHS``).

    Args:
        root: folder holding ``comballaz-LHS/`` (a TOPO download or a Mini-Comballaz render).
        split: ``"train"`` / ``"val"`` / ``"test"`` / ``"all"`` or pose-row indices; each row is
            assigned independently, ``split_fractions`` (default 0.8 / 0.1 / 0.1).
        image_size: None (native), ``(H, W)`` or the short side.
        transform: optional callable on the sample dict.
        flight: another synthetic flight of the same layout (e.g. ``"EPFL-LHS"``).
        **kwargs: the other :class:`TopoFlight` arguments (``frame``, ``load_semantics``,
            ``on_error``, ``split_fractions``, ``split_seed``, ``split_block``).
    """

    def __init__(
        self,
        root: str | Path,
        split: str | Sequence[int] = "all",
        image_size: tuple[int, int] | int | None = None,
        transform: Callable[[dict], dict] | None = None,
        flight: str = "comballaz-LHS",
        **kwargs,
    ) -> None:
        super().__init__(root, flight, domain="synthetic", split=split, image_size=image_size, transform=transform,
                         **kwargs)


class ComballazAir(_AreaFlights):
    """Real DJI Mavic Air 2 flights at Comballaz, with their synthetic twins rendered at the same poses.

    Args:
        root: folder holding ``<flight>/`` and ``<flight>-real/`` for each flight.
        domain: ``"real"`` (photos), ``"synthetic"`` (the twin renders) or ``"paired"`` (both:
            ``image`` real, ``image_synthetic`` render).
        split: ``"train"`` / ``"val"`` / ``"test"`` / ``"all"`` (blocks of 25 rows within each
            flight, see the module doc), or a dict ``{flight: rows}``.
        image_size: None (native), ``(H, W)`` or the short side.
        transform: optional callable on the sample dict.
        flights: flight names; default: the ``IN_PLACE`` flights whose folders exist under ``root``.
            ``ComballazAir.OUT_OF_PLACE`` holds the Sepey flight, outside the training area.
        **kwargs: the other :class:`TopoFlight` arguments.
    """

    IN_PLACE = (
        "comballaz-2020-11-06-piloted",
        "comballaz-2020-11-06-planned",
        "comballaz-2021-10-13-piloted",
        "comballaz-2021-03-27-winter",
    )
    OUT_OF_PLACE = ("sepey-2021-10-13-outofplace",)


class EPFLPhantom(_AreaFlights):
    """Real DJI Phantom flights over the EPFL campus, with their synthetic twins (same API as :class:`ComballazAir`).

    ``EPFLPhantom.OUT_OF_PLACE`` holds the St-Sulpice flight, outside the training area.
    """

    IN_PLACE = (
        "EPFL-2020-09-17-piloted",
        "EPFL-2020-09-17-planned",
        "EPFL-2020-09-24-planned",
        "EPFL-2020-11-11-planned",
    )
    OUT_OF_PLACE = ("StSulpice-2021-10-14-outofplace",)
