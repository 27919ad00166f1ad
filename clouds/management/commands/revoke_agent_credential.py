"""``revoke_agent_credential --customer SLUG AGENT_ID``: the agent's next request is a 401.

The agent must enroll again (with a new enrollment token) to come back. Its machines, jobs
and snapshots stay. Revoking an agent without an active credential changes nothing.
"""

from django.core.management.base import BaseCommand, CommandError

from clouds.models import Agent
from clouds.services import agent_credential_revoke
from tenants.commands import customer_from_option


class Command(BaseCommand):
    help = "Revoke the credential of an agent."

    def add_arguments(self, parser):
        parser.add_argument("--customer", required=True, help="The customer's slug.")
        parser.add_argument("agent", help="The agent's id (the first number of its display id).")

    def handle(self, *args, customer, agent, **options):
        target = customer_from_option(customer)
        if not agent.isdigit() or len(agent) > 18:
            raise CommandError(f"The agent id must be a number, not {agent!r}.")
        row = Agent.objects.for_customer(target).filter(pk=int(agent)).first()
        if row is None:
            raise CommandError(f"Customer {target.slug} has no agent {agent}.")
        if agent_credential_revoke(row):
            self.stdout.write(f"Revoked the credential of agent {row.display_id}.")
        else:
            self.stdout.write(f"Agent {row.display_id} has no active credential.")
