"""Reading a VMDK descriptor the way ESXi writes them: the flat extent a snapshot's frozen
layer names, and a clear refusal of what the datastore interface cannot give bit-exact (a
sparse delta layer, several extents). The simulator's own descriptors are read in
tests/agent/test_vmware_job.py."""

import pytest

from agent.errors import AgentError
from agent.vmware.datastore import DatastoreFile, parse_descriptor

ESXI_FLAT = """# Disk DescriptorFile
version=1
encoding="UTF-8"
CID=a1b2c3d4
parentCID=ffffffff
createType="vmfs"

# Extent description
RW 41943040 VMFS "web-01_1-flat.vmdk"

# The Disk Data Base
#DDB
ddb.adapterType = "lsilogic"
ddb.thinProvisioned = "1"
"""

ESXI_DELTA = """# Disk DescriptorFile
version=1
CID=fffffffe
parentCID=a1b2c3d4
createType="vmfsSparse"
parentFileNameHint="web-01.vmdk"
# Extent description
RW 41943040 VMFSSPARSE "web-01-000001-delta.vmdk"
"""

SESPARSE = ESXI_DELTA.replace('"vmfsSparse"', '"seSparse"').replace(
    'VMFSSPARSE "web-01-000001-delta.vmdk"', 'SESPARSE "web-01-000001-sesparse.vmdk"'
)

TWO_EXTENTS = """createType="twoGbMaxExtentFlat"
RW 4192256 FLAT "big-f001.vmdk" 0
RW 4192256 FLAT "big-f002.vmdk" 0
"""


def test_an_esxi_flat_descriptor_names_its_extent_and_size():
    assert parse_descriptor(ESXI_FLAT, "[ds] web/web-01_1.vmdk") == (
        "vmfs",
        "web-01_1-flat.vmdk",
        41943040,
    )


@pytest.mark.parametrize("text, kind", [(ESXI_DELTA, "VMFSSPARSE"), (SESPARSE, "SESPARSE")])
def test_a_sparse_delta_layer_is_refused_with_the_reason(text, kind):
    with pytest.raises(AgentError) as refused:
        parse_descriptor(text, "[ds] web/web-01-000001.vmdk")
    message = str(refused.value)
    assert f"is a {kind} extent" in message and "other snapshots" in message


def test_several_extents_are_refused():
    with pytest.raises(AgentError, match="has 2 extents"):
        parse_descriptor(TWO_EXTENTS, "[ds] big/big.vmdk")


def test_a_backing_path_is_a_descriptor_on_a_datastore():
    file = DatastoreFile.from_backing("Folder/DC1", "[SAN 01] web 01/web-01.vmdk")
    assert (file.datastore, file.path) == ("SAN 01", "web 01/web-01.vmdk")
    assert file.url() == "/folder/web%2001/web-01.vmdk?dcPath=Folder%2FDC1&dsName=SAN+01"
    for bad in ("web-01.vmdk", "[ds] web/web-01.iso"):
        with pytest.raises(AgentError):
            DatastoreFile.from_backing("DC0", bad)
