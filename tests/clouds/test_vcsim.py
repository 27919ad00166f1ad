"""The vSphere simulator the VMware connector is tested against answers pyvmomi like a
vCenter: inventory, and a login check when it is started with credentials."""

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

from tests.vsphere_support import running_vcsim

pytestmark = pytest.mark.vsphere


def test_pyvmomi_lists_the_simulated_inventory():
    with running_vcsim(vms=2) as (host, port):
        si = SmartConnect(
            host=host, port=port, user="any", pwd="any", disableSslCertValidation=True
        )
        try:
            content = si.RetrieveContent()
            view = content.viewManager.CreateContainerView(
                content.rootFolder, [vim.VirtualMachine], True
            )
            names = sorted(vm.name for vm in view.view)
            clusters = content.viewManager.CreateContainerView(
                content.rootFolder, [vim.ClusterComputeResource], True
            )
            assert [c.name for c in clusters.view] == ["DC0_C0"]
        finally:
            Disconnect(si)
    assert names == ["DC0_C0_RP0_VM0", "DC0_C0_RP0_VM1", "DC0_H0_VM0", "DC0_H0_VM1"]


def test_a_simulator_with_credentials_refuses_a_wrong_password():
    with running_vcsim(user="acura", password="s3cret") as (host, port):
        with pytest.raises(vim.fault.InvalidLogin):
            SmartConnect(
                host=host, port=port, user="acura", pwd="wrong", disableSslCertValidation=True
            )
        si = SmartConnect(
            host=host, port=port, user="acura", pwd="s3cret", disableSslCertValidation=True
        )
        Disconnect(si)
