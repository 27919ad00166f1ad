"""The one tenant-scoping mechanism: every tenant-owned model derives from ``TenantModel``.

``TenantModel.objects`` returns a ``TenantQuerySet`` that refuses to run a query that was
not narrowed to one customer. A query counts as narrowed when its top-level ``WHERE``
(an AND of conditions) contains

* an exact / ``in`` condition on the model's own ``customer`` column — what
  ``for_customer()`` adds, and what ``filter(customer=...)`` adds; or
* an exact / ``in`` condition on a foreign key to another tenant-owned model — the related
  object already belongs to one customer, which is how related managers
  (``group.machines.all()``), prefetches and unique-together checks query.

Provider-wide code (the Django admin, periodic tasks that loop over all customers) opens
the scope on purpose with ``all_customers()``, which is easy to grep for in review.
Forgetting to scope is an exception in development and tests instead of a data leak.
"""

from django.db import models
from django.db.models.lookups import Exact, In


class TenantScopeError(RuntimeError):
    """A tenant-owned model was queried without being narrowed to one customer."""


def _is_scoping_column(model, target) -> bool:
    if target is None or getattr(target, "model", None) is None:
        return False
    if not issubclass(model, target.model) and target.model is not model:
        return False
    if target.name == "customer":
        return True
    related = getattr(target, "related_model", None)
    return bool(target.is_relation and related and issubclass(related, TenantModel))


def _where_is_scoped(model, where) -> bool:
    if where.negated or where.connector != "AND":
        return False
    for child in where.children:
        if isinstance(child, (Exact, In)):
            target = getattr(child.lhs, "target", None)
            if _is_scoping_column(model, target) and child.rhs is not None:
                return True
        elif hasattr(child, "children") and _where_is_scoped(model, child):
            return True
    return False


class TenantQuerySet(models.QuerySet):
    """A queryset that only runs once it is narrowed to one customer (see module doc)."""

    _open_scope = False

    def for_customer(self, customer) -> "TenantQuerySet":
        """This model's rows of one customer: the normal way in for views and services."""
        if customer is None:
            raise TenantScopeError(f"{self.model.__name__}.for_customer() needs a customer")
        return self.filter(customer=customer)

    def all_customers(self) -> "TenantQuerySet":
        """Rows of every customer: for provider staff (admin) and provider-wide tasks."""
        clone = self._chain()
        clone._open_scope = True
        return clone

    def _clone(self):
        clone = super()._clone()
        clone._open_scope = self._open_scope
        return clone

    def _assert_scoped(self) -> None:
        if self._open_scope or self.query.is_empty():
            return
        if _where_is_scoped(self.model, self.query.where):
            return
        raise TenantScopeError(
            f"Unscoped query on tenant-owned model {self.model.__name__}: use "
            f".for_customer(customer), query through a related object, or .all_customers() "
            f"for provider-wide code."
        )

    def _fetch_all(self):
        if self._result_cache is None:
            self._assert_scoped()
        super()._fetch_all()

    def iterator(self, chunk_size=None):
        self._assert_scoped()
        return super().iterator(chunk_size=chunk_size)

    def count(self):
        if self._result_cache is None:
            self._assert_scoped()
        return super().count()

    def exists(self):
        if self._result_cache is None:
            self._assert_scoped()
        return super().exists()

    def aggregate(self, *args, **kwargs):
        self._assert_scoped()
        return super().aggregate(*args, **kwargs)

    def update(self, **kwargs):
        self._assert_scoped()
        return super().update(**kwargs)

    def delete(self):
        self._assert_scoped()
        return super().delete()


class TenantManager(models.Manager.from_queryset(TenantQuerySet)):
    """Default manager of tenant-owned models; Django's base manager stays plain for
    framework internals (cascading deletes, ``refresh_from_db``)."""


class TenantModel(models.Model):
    """Abstract base of every model that belongs to one customer."""

    customer = models.ForeignKey(
        "tenants.Customer",
        on_delete=models.CASCADE,
        related_name="+",
        editable=False,
    )

    objects = TenantManager()

    class Meta:
        abstract = True
