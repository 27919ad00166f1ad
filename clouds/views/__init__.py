"""Customer pages of the clouds app, one module per concern: ``agents``, ``wizard`` (Register
new platform), ``clouds`` (Manage Clouds), ``links`` (Download links) and ``download`` (the
package behind a link, no login). Their URLs are in ``clouds.urls``."""
