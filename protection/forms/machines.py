"""Forms of the machine and group pages. They validate input; services do the writes."""

from django import forms
from django.utils.http import url_has_allowed_host_and_scheme

from tenants.forms.base import TenantForm

from ..models import Machine, MachineGroup, MachineStatus, Platform
from ..selectors import MACHINE_SORTS, NO_GROUP

NOT_YOURS = "Some of the selected machines do not exist (any more). Nothing was changed."


class MachineGroupForm(TenantForm):
    """Create or edit a group; the unique name is checked by the service (one rule)."""

    name = forms.CharField(max_length=100)
    description = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What the machines have in common, e.g. “Production web tier”.",
    )


class GroupDeleteForm(TenantForm):
    """Where the machines of a group that is being deleted go."""

    move_to = forms.ModelChoiceField(
        queryset=MachineGroup.objects.all(),  # narrowed to the customer by TenantForm
        required=False,
        empty_label="No group",
        label="Move its machines to",
        error_messages={"invalid_choice": "Choose one of your other groups, or no group."},
    )

    def __init__(self, *args, group: MachineGroup, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["move_to"].queryset = self.fields["move_to"].queryset.exclude(pk=group.pk)


class MachineFilterForm(TenantForm):
    """The machine list's filters, read from the query string.

    An invalid value (a stale group id in a bookmark) only drops that one filter.
    """

    q = forms.CharField(required=False, label="Search")
    group = forms.ChoiceField(required=False)
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *MachineStatus.choices])
    platform = forms.ChoiceField(required=False, choices=[("", "Any platform"), *Platform.choices])
    protection = forms.ChoiceField(
        required=False,
        choices=[
            ("", "Protected or not"),
            ("protected", "Protected"),
            ("unprotected", "Not protected"),
        ],
    )
    sort = forms.ChoiceField(required=False, choices=[(key, key) for key in MACHINE_SORTS])

    def __init__(self, *args, groups=(), with_group=True, **kwargs):
        super().__init__(*args, **kwargs)
        self._groups = {str(g.pk): g for g in groups}
        if with_group:
            self.fields["group"].choices = [
                ("", "All groups"),
                (NO_GROUP, "No group"),
                *((pk, g.name) for pk, g in self._groups.items()),
            ]
        else:
            del self.fields["group"]

    def filters(self) -> dict:
        """Keyword arguments for ``selectors.machine_search``, without the invalid ones."""
        self.is_valid()
        data = {name: value for name, value in self.cleaned_data.items() if value}
        if "group" in data and data["group"] != NO_GROUP:
            data["group"] = self._groups[data["group"]]
        return data

    @property
    def active(self) -> bool:
        """Whether any filter narrows the list (sorting does not)."""
        return any(v for k, v in self.filters().items() if k != "sort")


class MachineBulkForm(TenantForm):
    """*Actions* on selected machines. The machine and group fields are scoped to the
    customer, so one foreign or unknown id makes the whole form invalid."""

    START = "start_protection"
    STOP = "stop_protection"
    REPLICATE = "replicate_now"
    MOVE = "move"

    machines = forms.ModelMultipleChoiceField(
        queryset=Machine.objects.all(),  # narrowed to the customer by TenantForm
        error_messages={
            "required": "Select at least one machine.",
            "invalid_choice": NOT_YOURS,
            "invalid_pk_value": NOT_YOURS,
        },
    )
    action = forms.ChoiceField(
        choices=[
            (START, "Start Protection"),
            (STOP, "Stop Protection"),
            (REPLICATE, "Replicate now"),
            (MOVE, "Move to group"),
        ],
        error_messages={"required": "Choose an action.", "invalid_choice": "Unknown action."},
    )
    group = forms.ModelChoiceField(
        queryset=MachineGroup.objects.all(),
        required=False,
        empty_label="No group",
        error_messages={"invalid_choice": "The selected group does not exist (any more)."},
    )
    next = forms.CharField(required=False)

    def __init__(self, *args, request=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.request = request

    def full_clean(self):
        super().full_clean()
        # The move select is on the page for every action: a stale group there must not
        # block Start/Stop Protection, which do not use it.
        if self.cleaned_data.get("action") not in (None, self.MOVE):
            self._errors.pop("group", None)

    def clean_next(self) -> str:
        """Only a same-site path is followed after the action (no open redirect)."""
        url = self.cleaned_data.get("next", "")
        if (
            url
            and self.request is not None
            and url_has_allowed_host_and_scheme(
                url, allowed_hosts={self.request.get_host()}, require_https=self.request.is_secure()
            )
        ):
            return url
        return ""
