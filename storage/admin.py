"""Provider admin of the snapshot store.

The catalog rows mirror bytes in the chunk store, so most of them are read-only here: a
chunk, index file, upload session or quarantine row edited or deleted by hand would no
longer match the store (lost data or a broken restore). What staff may change:

* snapshots — the protected flag (through ``snapshot_set_protected``) and deletion of an
  unprotected snapshot that no open upload uses as its base (metadata only, like prune);
* customer stores — create one early (otherwise it appears with the first upload); never
  delete one that still has chunks or snapshots: its row holds the wrapped data key.
"""

from django.contrib import admin, messages
from django.template.defaultfilters import filesizeformat

from tenants.admin.base import TenantAdmin

from .models import (
    Chunk,
    CustomerStore,
    IndexFile,
    MaintenanceRun,
    QuarantinedChunk,
    SessionState,
    Snapshot,
    UploadSession,
)
from .services.context import customer_store
from .services.snapshots import snapshot_set_protected


class ReadOnlyMixin:
    """View-only pages: the rows are the store's catalog, kept by the storage services."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(CustomerStore)
class CustomerStoreAdmin(admin.ModelAdmin):
    list_display = ["customer", "namespace", "encrypted", "created_at"]
    search_fields = ["customer__name", "customer__slug", "namespace"]
    list_select_related = ["customer"]
    readonly_fields = ["namespace", "encrypted", "created_at"]

    def get_readonly_fields(self, request, obj=None):
        return ["customer", *self.readonly_fields] if obj is not None else self.readonly_fields

    @admin.display(boolean=True, description="Encrypted")
    def encrypted(self, obj):
        return obj.encrypted

    def save_model(self, request, obj, form, change):
        if change:
            obj.save()
            return
        # The one way a store is made: a random namespace and a fresh wrapped data key.
        customer_store(obj.customer)
        obj.pk = CustomerStore.objects.get(customer=obj.customer).pk
        obj.refresh_from_db()

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        for store in objs:
            snapshots = Snapshot.objects.for_customer(store.customer).count()
            chunks = Chunk.objects.for_customer(store.customer).count()
            if snapshots or chunks:
                protected.append(
                    f"{store}: {snapshots} snapshot(s) and {chunks} chunk(s) in namespace "
                    f"{store.namespace} — this row holds their data key"
                )
        return deleted, counts, perms_needed, protected


@admin.register(Chunk)
class ChunkAdmin(ReadOnlyMixin, TenantAdmin):
    list_display = ["digest", "customer", "plain", "stored", "created_at", "last_seen_at"]
    list_filter = ["customer", "sweeping"]
    search_fields = ["=digest", "customer__slug"]
    show_full_result_count = False  # a store holds millions of chunks

    @admin.display(description="Plain", ordering="plain_size")
    def plain(self, obj):
        return filesizeformat(obj.plain_size)

    @admin.display(description="Stored", ordering="stored_size")
    def stored(self, obj):
        return filesizeformat(obj.stored_size)


@admin.register(IndexFile)
class IndexFileAdmin(ReadOnlyMixin, TenantAdmin):
    list_display = ["__str__", "customer", "kind", "depth", "entries", "size", "created_at"]
    list_filter = ["customer", "kind"]
    search_fields = ["=id", "checksum", "customer__slug"]

    @admin.display(description="Stored", ordering="stored_bytes")
    def size(self, obj):
        return filesizeformat(obj.stored_bytes)


@admin.register(Snapshot)
class SnapshotAdmin(TenantAdmin):
    list_display = [
        "__str__",
        "customer",
        "machine",
        "state",
        "protected",
        "logical",
        "new_stored",
        "created_at",
    ]
    list_filter = ["customer", "state", "protected"]
    search_fields = ["=id", "machine__name", "disk__key", "customer__slug", "=job__id"]
    list_select_related = ["customer", "machine", "disk"]
    date_hierarchy = "created_at"
    actions = ["protect", "unprotect"]

    def has_add_permission(self, request, obj=None):
        return False  # snapshots come from committed uploads only

    def get_readonly_fields(self, request, obj=None):
        editable = {"protected"}
        return [f.name for f in self.model._meta.fields if f.name not in editable]

    @admin.display(description="Logical", ordering="logical_bytes")
    def logical(self, obj):
        return filesizeformat(obj.logical_bytes)

    @admin.display(description="New stored", ordering="new_stored_bytes")
    def new_stored(self, obj):
        return filesizeformat(obj.new_stored_bytes)

    def save_model(self, request, obj, form, change):
        if "protected" in form.changed_data:
            snapshot_set_protected(obj.customer, obj, obj.protected)

    def _set_protected(self, request, queryset, protected: bool):
        changed = 0
        for snapshot in queryset.select_related("customer"):
            changed += snapshot_set_protected(snapshot.customer, snapshot, protected)
        verb = "protected" if protected else "released"
        self.message_user(request, f"{changed} snapshot(s) {verb}.", messages.SUCCESS)

    @admin.action(description="Protect selected snapshots from pruning")
    def protect(self, request, queryset):
        self._set_protected(request, queryset, True)

    @admin.action(description="Release selected snapshots (pruning may remove them)")
    def unprotect(self, request, queryset):
        self._set_protected(request, queryset, False)

    def get_deleted_objects(self, objs, request):
        """Refuse what prune refuses: protected snapshots and bases of open uploads."""
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        for snapshot in objs:
            if snapshot.protected:
                protected.append(f"{snapshot} is protected: release it first")
            elif (
                UploadSession.objects.for_customer(snapshot.customer)
                .filter(base=snapshot, state=SessionState.OPEN)
                .exists()
            ):
                protected.append(f"{snapshot} is the base of an upload in progress")
        return deleted, counts, perms_needed, protected


@admin.register(UploadSession)
class UploadSessionAdmin(ReadOnlyMixin, TenantAdmin):
    list_display = [
        "id",
        "customer",
        "machine",
        "disk",
        "state",
        "chunks_uploaded",
        "started_at",
        "last_activity_at",
    ]
    list_filter = ["customer", "state"]
    search_fields = ["=id", "machine__name", "disk__key", "customer__slug", "=job__id"]
    list_select_related = ["customer", "machine", "disk"]


@admin.register(QuarantinedChunk)
class QuarantinedChunkAdmin(ReadOnlyMixin, TenantAdmin):
    list_display = ["digest", "customer", "reason", "detected_at", "repaired_at"]
    list_filter = ["customer"]
    search_fields = ["=digest", "reason", "customer__slug"]


@admin.register(MaintenanceRun)
class MaintenanceRunAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["__str__", "kind", "customer", "ok", "started_at", "finished_at"]
    list_filter = ["kind", "ok", "customer"]
    search_fields = ["customer__slug", "customer__name"]
    list_select_related = ["customer"]
