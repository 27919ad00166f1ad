"""What the admin pages of the clouds app share."""


class ViewOnlyMixin:
    """Rows written by agents or services only: staff look, and act through actions.
    Deleting stays possible (a credential deleted is one revoked; events expire anyway),
    which is also what lets an agent be deleted with its credentials and events."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False
