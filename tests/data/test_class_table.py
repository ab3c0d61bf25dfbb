"""The semantic class table (``semantic_classes.json``): read, and refused with the file named."""

import pytest

from topoloc.data.semantics import read_class_table


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
