"""Bodies of the clouds app's APIs: ``agent`` (the agent API, ``agent/PROTOCOL.md``) and
``customer`` (the customer API of clouds and download links)."""
