"""The oVirt appliance's job runner: the product description's snapshot lifecycle, with the
disk data read through ovirt-imageio.

Only the oVirt appliance carries this package (and ovirtsdk4, ``requirements-ovirt.txt``).
One job of a VM (:mod:`.job`): a snapshot of its disks at the start (``persist_memorystate``
false, waited for until ``ok``); per disk an image transfer of the snapshot's volume with its
chain, read by Range requests in parallel — the first time only the extents that are not zero,
later only the extents allocated in the new snapshot's own layer over the previous one (a
shallow transfer's ``hole: false`` extents: "the new blocks between two snapshots"); at the end
every transfer finalized and the snapshot of the previous replication deleted, leaving the new
one as the next job's base. The imageio HTTP API is spoken directly (its client library is
GPL and is never imported).
"""
