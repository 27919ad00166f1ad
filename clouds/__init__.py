"""The clouds app: agent identity and platforms.

Agent identity: agents, enrollment tokens, credentials, events and inventory
(``models/agents.py``, ``services/{agents,enrollment,inventory}.py``), the agent API
(``api/agent.py`` on ``api/base.py``), the agent pages (``views/agents.py``).
Platforms: registered clouds and their connectors (``models/clouds.py``, ``connectors/``,
``services/clouds.py``, ``views/clouds.py``), download links and agent packages
(``models/downloads.py``, ``services/downloads.py``, ``packages/``, ``views/links.py``,
``views/download.py``), the Register new platform wizard (``models/wizard.py``,
``services/wizard.py``, ``views/wizard.py``, ``forms.py``) and the customer API of clouds and
links (``api/customer.py``). Each package's ``__init__`` lists its modules.
"""
