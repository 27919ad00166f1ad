"""The VMware appliance's job runner: replicate vSphere VMs through snapshots, CBT and the
datastore's HTTP interface.

Only the appliance carries this package (and pyVmomi, ``requirements-vmware.txt``); a Linux or
Windows agent never imports it. One job of a VM runs, in order (:mod:`.job`):

1. the cloud's settings (``GET cloud/``) and a vCenter session (:mod:`.session`);
2. the storage thresholds, before anything is touched (:mod:`.thresholds`);
3. the *On replication start* power action (:mod:`.power`);
4. leftover snapshots of crashed jobs removed, CBT switched on when it is off, a snapshot
   taken with the quiesce strategy (:mod:`.snapshots`);
5. per disk of the snapshot: the changed areas from ``QueryChangedDiskAreas``
   (:mod:`.changes`), read from the frozen layer through ``/folder`` Range requests
   (:mod:`.datastore`) into the common pipeline (missing-query, upload, commit);
6. the snapshot removed and the *On replication finish* power action, also after a failure.
"""
