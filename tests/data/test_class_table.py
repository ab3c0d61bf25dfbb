"""The semantic class table (``semantic_classes.json``): read, and refused with the file named."""

import pytest

from topoloc.data.semantics import SEMANTIC_CLASSES, TOPO_DATAGEN_CLASSES, class_table, read_class_table


def test_a_class_table_reads_as_ids_to_names(tmp_path):
    path = tmp_path / "classes.json"
    path.write_text('{"2": "ground", "5": " high_vegetation ", "6": "building"}')  # LiDAR-style ids
    assert read_class_table(path) == {2: "ground", 5: "high_vegetation", 6: "building"}


@pytest.mark.parametrize("text, match", [
    ("not json", "could not read the class table"),
    ("[1, 2]", "expected a non-empty JSON object"),
    ("{}", "expected a non-empty JSON object"),
    ('{"sky": "sky"}', "class id 'sky': expected an integer from 0 to 255"),
    ('{"256": "x"}', "class id '256'"),
    ('{"-1": "x"}', "class id '-1'"),
    ('{"1": ""}', "class 1: expected a non-empty name"),
    ('{"1": 3}', "class 1: expected a non-empty name"),
    ('{"1": "tree", "2": "tree"}', r"distinct, got \['tree'\]"),
])
def test_bad_class_tables_are_refused_with_the_file_named(tmp_path, text, match):
    path = tmp_path / "classes.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=match) as err:
        read_class_table(path)
    assert str(path) in str(err.value)


def test_a_missing_class_table_is_refused_with_an_example(tmp_path):
    with pytest.raises(FileNotFoundError, match='class table not found.*"1": "meadow"'):
        read_class_table(tmp_path / "none.json")


def test_topo_datagen_table_is_the_asprs_las_classes_of_swisssurface3d():
    # ASPRS LAS 1.4 standard point classes (Table 17 of the specification), the codes swisstopo uses
    # in swissSURFACE3D: 1 unclassified, 2 ground, 3 (low) vegetation, 6 building, 9 water, 17 bridge deck;
    # a pixel with no point is sky, 0 (CrossLoc's label trimming lists the same raw ids).
    asprs = {1: "unclassified", 2: "ground", 3: "vegetation", 6: "building", 9: "water", 17: "bridge"}
    assert class_table("topo-datagen") == {0: "sky", **asprs}


def test_class_table_by_name_or_file(tmp_path):
    assert class_table(" TOPO-DataGen ")[17] == "bridge"  # names are case- and space-insensitive
    assert class_table("mini-comballaz") == SEMANTIC_CLASSES
    table = class_table("topo-datagen")
    table[0] = "changed"  # a copy: the built-in table stays as it is
    assert TOPO_DATAGEN_CLASSES[0] == "sky"
    path = tmp_path / "classes.json"
    path.write_text('{"2": "ground"}')
    assert class_table(path) == class_table(str(path)) == {2: "ground"}
    with pytest.raises(FileNotFoundError, match="topo-datagen, mini-comballaz"):
        class_table("topo_datagen")  # neither a built-in name nor a file
