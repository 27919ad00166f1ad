"""Registers every app's viewsets on the one /api/v1/ router.

Imports run upward only: this project package knows the apps; the apps don't know it.
"""

from clouds.api.routes import register as register_clouds
from protection.api.routes import register as register_protection
from storage.api.routes import register as register_storage
from tenants.api.routes import register as register_tenants

from .router import router

register_tenants(router)
register_protection(router)
register_storage(router)
register_clouds(router)
