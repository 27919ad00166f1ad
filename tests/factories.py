"""factory-boy factories shared by all tests."""

import factory
from django.contrib.auth import get_user_model

from protection.models import Disk, Machine, MachineGroup, MachineStatus, Platform
from tenants.models import Customer, Membership, Role

PASSWORD = "correct-horse-battery"


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    name = factory.Sequence(lambda n: f"Customer {n}")
    slug = factory.Sequence(lambda n: f"customer-{n}")
    time_zone = "Europe/Berlin"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    customer = factory.SubFactory(CustomerFactory)
    role = Role.ADMIN


class MachineGroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MachineGroup

    customer = factory.SubFactory(CustomerFactory)
    name = factory.Sequence(lambda n: f"Group {n}")
    description = ""


class MachineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Machine

    customer = factory.SubFactory(CustomerFactory)
    group = factory.SubFactory(MachineGroupFactory, customer=factory.SelfAttribute("..customer"))
    name = factory.Sequence(lambda n: f"vm-{n:03d}")
    platform = Platform.VMWARE
    external_id = factory.Sequence(lambda n: f"uuid-{n}")
    os_name = "Ubuntu 24.04"
    ip_addresses = factory.LazyFunction(lambda: ["10.0.0.10"])
    cpus = 2
    ram_mb = 4096
    status = MachineStatus.UNPROTECTED


class DiskFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Disk

    machine = factory.SubFactory(MachineFactory)
    customer = factory.SelfAttribute("machine.customer")
    key = factory.Sequence(lambda n: f"disk-{n}")
    label = "Hard disk 1"
    size_bytes = 10 * 1024**3


def enroll_agent(customer, *, platform="linux", hostname="host-1", **token_options):
    """An agent enrolled through the real services (a token, then enroll): the result has
    ``.agent``, ``.credential`` and ``.text`` (the credential's secret)."""
    from clouds.services import agent_enroll, enrollment_token_create

    token = enrollment_token_create(customer, platform=platform, **token_options).text
    return agent_enroll(token, hostname=hostname, version="1.0")
