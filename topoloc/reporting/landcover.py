"""The report's "Where the error is" section: a run's errors on each test flight, its images cut into
quarters by the share of each common land-cover class in view.

The shares come from the synthetic render's semantic map at each test pose (the pose file's row),
so photos and renders of one pose fall into the same quarter. A class whose photo error rises
across its quarters while the render error does not is one that the augmentations do not cover
(docs/RESULTS.md: the leafless deciduous forest). `topoloc.evaluation.landcover` holds the numbers.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from topoloc.data._images import read_semantics
from topoloc.evaluation.landcover import class_shares, errors_by_share, rows_of_poses
from topoloc.evaluation.results import write_rows_csv

__all__ = ["LANDCOVER_COLUMNS", "LANDCOVER_MIN_SHARE", "landcover_section", "view_shares"]

#: Classes are shown when they fill at least this share of a flight's views on average.
LANDCOVER_MIN_SHARE = 0.05

#: Columns of the section's CSV: one row per flight, domain, run, class and part.
LANDCOVER_COLUMNS = ("flight", "domain", "run", "class", "part", "share_low", "share_high", "images", "median_m",
                     "median_deg")

#: Domains in the order the section lists them (others follow in the order of the evaluation).
_DOMAIN_ORDER = ("real", "real_alt", "synthetic")


def view_shares(twin, classes: Mapping[int, str]) -> dict[str, np.ndarray]:
    """The share of each class in each view of a flight, from its renders' semantic maps.

    Args:
        twin: the flight's synthetic `topoloc.data.TopoFlight`, read with ``load_semantics=True``
            (one ``*_semantics.npy`` per row of its pose file).
        classes: class id -> name.

    Returns:
        name -> (rows,) shares in [0, 1], in the pose file's row order.
    """
    if not getattr(twin, "semantics_paths", None) or len(twin.semantics_paths) != len(twin):
        raise ValueError(f"{twin.flight}: expected the synthetic flight read with load_semantics=True")
    per_view = [class_shares(read_semantics(p).numpy()[None], classes) for p in twin.semantics_paths]
    return {name: np.concatenate([v[name] for v in per_view]) for name in classes.values()}


def _reading_label(run: str, headline: str, domain: str) -> str:
    """``real`` for the headline run, ``real, AdaBN`` for ``"<headline> + AdaBN"``, else ``real, <run>``."""
    if run == headline:
        return domain
    suffix = run[len(headline) + 3:] if run.startswith(f"{headline} + ") else run
    return f"{domain}, {suffix}"


def landcover_section(
    runs: Mapping[str, Any],
    twins: Sequence[Any],
    classes: Mapping[int, str] | Sequence[Mapping[int, str]],
    domains: Sequence[str] | None = None,
    min_share: float = LANDCOVER_MIN_SHARE,
    parts: int = 4,
    csv_path: str | PathLike | None = None,
    under_heading: bool = False,
) -> str:
    """Markdown: per test flight, each run's median errors per quarter of each common class's share.

    Args:
        runs: run name -> `topoloc.evaluation.EvaluationResult` (its ``model`` is read); the first
            is the headline, and ``"<headline> + <x>"`` rows are labelled ``<domain>, <x>``.
        twins: one synthetic `topoloc.data.TopoFlight` per test flight, with ``load_semantics=True``,
            in the frame of the evaluation.
        classes: class id -> name, the classes that may be shown; or one such table per twin.
        domains: the domains to show, in this order (default: those evaluated, photos first).
        min_share: a class is shown when its mean share over the flight's views is at least this.
        parts: the number of groups (4: quarters).
        csv_path: also write every part shown as a row of a CSV (`LANDCOVER_COLUMNS`; shares 0-1).
        under_heading: the section goes under a "Where the error is" heading, so each flight's paragraph
            leads with the flight's name instead of repeating it.

    Returns:
        The section's markdown; a flight / domain with fewer images than ``parts`` says so instead.
    """
    if not runs:
        raise ValueError("landcover_section: expected at least one run")
    headline = next(iter(runs))
    tables = [classes] * len(twins) if isinstance(classes, Mapping) else list(classes)
    if len(tables) != len(twins):
        raise ValueError(f"landcover_section: expected one class table or one per flight ({len(twins)}), "
                         f"got {len(tables)}")
    out: list[str] = []
    records: list[dict[str, Any]] = []
    for twin, table in zip(twins, tables):
        shares = view_shares(twin, table)
        shown = {n: s for n, s in shares.items() if s.mean() >= min_share}
        pose_file = twin.poses()
        readings, skipped = [], []
        for domain in _domains(runs, twin.flight, domains):
            for run, result in runs.items():
                ev = result.model
                mask = ev.mask(domain=domain, flight=twin.flight)
                if not mask.any():
                    continue
                if mask.sum() < parts:
                    skipped.append(f"{domain} ({run}): {int(mask.sum())} image(s), fewer than the {parts} parts need")
                    continue
                try:
                    row = rows_of_poses(ev.gt_c2w[mask], pose_file)
                except ValueError as err:
                    raise ValueError(f"{twin.flight} {domain}: a test image's pose is not in the pose file of the "
                                     f"flight's renders ({err})") from None
                readings.append((_reading_label(run, headline, domain), ev.translation_m[mask],
                                 ev.rotation_deg[mask], row, domain, run))
        group = "quarter" if parts == 4 else "group"
        lead = (f"**`{twin.flight}`** ({headline})" if under_heading
                else f"**Where the error is** ({headline}, `{twin.flight}`)")
        out.append(f"{lead}: the test images cut into {parts} {group}s "
                   "of nearly equal size by the share of each common land-cover class in view (from the synthetic "
                   f"render's semantic map at each pose), median m / deg per {group}, least of the class first. A "
                   f"class whose real error rises across its {group}s while the synthetic one does not is one the "
                   "augmentations do not cover (docs/RESULTS.md of the source repository: the leafless deciduous "
                   "forest). Views with the "
                   f"same share stay in one {group}: a class absent from many views has a larger first {group}"
                   + (f" (`{Path(csv_path).name}` gives each {group}'s images)." if csv_path is not None else "."))
        if skipped:
            out.append("Split not computed for " + "; ".join(skipped) + ".")
        if not readings or not shown:
            out.append("No reading to split." if not readings else
                       f"No class fills {100 * min_share:.0f} % of the views on average.")
            continue
        header = " | ".join(f"{_ordinal(k + 1)} {group}" for k in range(parts))
        rows = [f"| class | reading | {header} |", "|---|---|" + "---|" * parts]
        for name, share in shown.items():
            for k, (label, t, r, row, domain, run) in enumerate(readings):
                groups = errors_by_share(t, r, share[row], parts=parts)
                records += [{"flight": twin.flight, "domain": domain, "run": run, "class": name, "part": j + 1,
                             "share_low": g.low, "share_high": g.high, "images": g.count, "median_m": g.median_m,
                             "median_deg": g.median_deg} for j, g in enumerate(groups)]
                if k == 0 or not np.array_equal(row, readings[k - 1][3]):  # the bounds of these images
                    rows.append(f"| {name} | share in view | "
                                + " | ".join(f"{100 * g.low:.0f}-{100 * g.high:.0f} %" if g.count else "-"
                                             for g in groups) + " |")
                rows.append(f"| | {label} | "
                            + " | ".join(f"{g.median_m:.0f} m / {g.median_deg:.1f} deg" if g.count else "-"
                                         for g in groups) + " |")
        out.append("\n".join(rows))
    if csv_path is not None:
        write_rows_csv(records, csv_path, LANDCOVER_COLUMNS)
        out.append(f"The same figures, one row per part: `{Path(csv_path).name}`.")
    return "\n\n".join(out)


def _domains(runs: Mapping[str, Any], flight: str, domains: Sequence[str] | None) -> list[str]:
    """The domains to show for a flight: those given, or those evaluated (photos first)."""
    if domains is not None:
        return list(domains)
    seen: list[str] = []
    for result in runs.values():
        ev = result.model
        for d in np.broadcast_to(np.asarray(ev.domains), (len(ev.translation_m),))[ev.mask(flight=flight)]:
            if str(d) not in seen:
                seen.append(str(d))
    return [d for d in _DOMAIN_ORDER if d in seen] + [d for d in seen if d not in _DOMAIN_ORDER]


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"
