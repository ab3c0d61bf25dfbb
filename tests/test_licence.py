"""The installed package carries its licence and the vendored poses' notice (MIT asks that both travel with
every copy): pyproject.toml names them, and the install's metadata lists them."""

from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_licence_and_the_presets_notice_travel_with_the_package():
    dist = metadata.distribution("topoloc")
    assert dist.metadata["License-Expression"] == "MIT"
    assert set(dist.metadata.get_all("License-File") or ()) >= {"LICENSE", "topoloc/data/presets/NOTICE.md"}
    text = (ROOT / "LICENSE").read_text()
    # The MIT licence as OSI publishes it: its title, grant and condition
    assert text.startswith("MIT License\n\nCopyright (c) ")
    assert "Permission is hereby granted, free of charge, to any person obtaining a copy" in text
    assert ("The above copyright notice and this permission notice shall be included in all\ncopies or "
            "substantial portions of the Software.") in text
    notice = (ROOT / "topoloc" / "data" / "presets" / "NOTICE.md").read_text()
    assert "MIT License, Copyright (c) 2021 TOPO-EPFL" in notice
