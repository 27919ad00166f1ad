"""--changed-areas: shapes accepted, bad input refused before anything is sent, positions."""

import json

import pytest

from agent.changes import assign, chunk_positions, load_changed_areas, parse_extents
from agent.errors import UsageError

MiB = 1 << 20


def write(tmp_path, data, name="areas.json"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_a_list_of_extents_applies_to_the_single_disk(tmp_path):
    parsed = load_changed_areas(write(tmp_path, [{"start": 0, "length": 10}]))
    assert assign(parsed, [("vda", "/dev/vda", MiB)]) == {"vda": [(0, 10)]}


def test_vmware_disk_change_info_is_accepted(tmp_path):
    info = {"startOffset": 0, "length": 8 * MiB, "changedArea": [{"start": MiB, "length": 5}]}
    parsed = load_changed_areas(write(tmp_path, info))
    assert parsed == [(MiB, 5)]


def test_a_mapping_names_disks_by_path_or_key(tmp_path):
    data = {"/dev/vda": [{"start": 0, "length": 1}], "vdb": {"changedArea": []}}
    parsed = load_changed_areas(write(tmp_path, data))
    disks = [("vda", "/dev/vda", MiB), ("vdb", "/dev/vdb", MiB), ("vdc", "/dev/vdc", MiB)]
    # vdc is not listed: it is compared hash by hash (no entry), not treated as unchanged.
    assert assign(parsed, disks) == {"vda": [(0, 1)], "vdb": []}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([{"start": -1, "length": 5}], "must not be negative"),
        ([{"start": 0, "length": -5}], "must not be negative"),
        ([{"start": 1.5, "length": 5}], "whole number"),
        ([{"start": True, "length": 5}], "whole number"),
        ([{"start": "0", "length": 5}], "whole number"),
        ([{"start": 0}], "exactly 'start' and 'length'"),
        ([{"start": 0, "length": 1, "x": 2}], "exactly 'start' and 'length'"),
        ([[0, 1]], "exactly 'start' and 'length'"),
        ({"vda": 5}, "expected a list"),
        ("5", "must hold a list or an object"),
        ("{not json", "not valid JSON"),
    ],
)
def test_malformed_files_are_clear_usage_errors(tmp_path, data, message):
    with pytest.raises(UsageError, match=message):
        load_changed_areas(write(tmp_path, data))


def test_a_missing_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="cannot read the changed-areas file"):
        load_changed_areas(tmp_path / "nope.json")


def test_an_extent_past_the_end_of_the_disk_is_refused():
    with pytest.raises(UsageError, match="reaches past its end"):
        assign([(MiB - 10, 11)], [("vda", "/dev/vda", MiB)])
    assert assign([(MiB - 10, 10)], [("vda", "/dev/vda", MiB)]) == {"vda": [(MiB - 10, 10)]}


def test_a_bare_list_with_several_disks_is_ambiguous():
    disks = [("vda", "/dev/vda", MiB), ("vdb", "/dev/vdb", MiB)]
    with pytest.raises(UsageError, match="exactly one --disk"):
        assign([(0, 1)], disks)


def test_a_mapping_naming_an_unknown_disk_is_refused():
    with pytest.raises(UsageError, match="no given --disk"):
        assign({"/dev/sdz": [(0, 1)]}, [("vda", "/dev/vda", MiB)])


def test_a_mapping_naming_one_disk_twice_is_refused():
    with pytest.raises(UsageError, match="twice"):
        assign({"/dev/vda": [], "vda": []}, [("vda", "/dev/vda", MiB)])


def test_positions_cover_every_chunk_an_extent_touches():
    cs = 64 * 1024
    extents = [
        (0, 1),  # first byte of chunk 0
        (cs - 1, 2),  # straddles chunks 0 and 1
        (5 * cs, cs),  # exactly chunk 5
        (5 * cs + 10, 20),  # inside chunk 5 again (overlap)
        (9 * cs, 0),  # empty: nothing
        (3 * cs + 7, 2 * cs),  # chunks 3, 4, 5
    ]
    assert chunk_positions(extents, cs) == [0, 1, 3, 4, 5]


def test_positions_of_no_extents_are_empty():
    assert chunk_positions([], 1024) == []
    assert parse_extents([], "x") == []
