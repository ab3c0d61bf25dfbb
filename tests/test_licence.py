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


def test_both_packages_say_they_are_typed():
    # PEP 561: a type checker reads an installed package's annotations only when it ships a py.typed marker;
    # `augment` is used without topoloc, so it needs its own
    import tomllib

    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = [name for name in setuptools["packages"]["find"]["include"] if "." not in name and "*" not in name]
    assert packages == ["topoloc", "augment"]
    for package in packages:
        assert (ROOT / package / "py.typed").is_file(), package
        assert "py.typed" in setuptools["package-data"][package], package
