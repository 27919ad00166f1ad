"""The Acura replication agent: ships alone, talks to the portal only over HTTP.

Nothing here imports the portal's Django apps; the contract with the server is
``agent/PROTOCOL.md``. Entry points: ``python -m agent`` (see ``cli.py``) and, for in-process
use such as the benchmark, :func:`agent.replicate.replicate_disks`.
"""

__version__ = "0.4.0"
