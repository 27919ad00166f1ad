"""``manage.py serve``: the embedded installation in one command.

Migrates, collects static files, creates the demo customer on first start (printing its
admin login once), then runs the web server (gunicorn), a Celery worker and Celery beat as
one process tree. Ctrl-C (SIGINT) or SIGTERM stops all three; if one of them dies, the
others are stopped too and the command exits non-zero, so a supervisor notices.
"""

import os
import secrets
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

DEMO_SLUG = "demo"
DEMO_USER = "admin"


class Command(BaseCommand):
    help = "Migrate, create the demo customer, and run web + Celery worker + beat together."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("ACURA_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--web-workers", type=int, default=2)
        parser.add_argument("--worker-concurrency", type=int, default=2)
        parser.add_argument("--no-demo", action="store_true", help="Do not create a demo customer.")

    def handle(self, *args, **options):
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        if not options["no_demo"]:
            self._ensure_demo(self._url(options))
        self._run_all(options)

    @staticmethod
    def _url(options) -> str:
        """Where the portal answers: the bound host (127.0.0.1 for "all addresses")."""
        host = options["host"]
        shown = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
        if ":" in shown:  # an IPv6 address
            shown = f"[{shown}]"
        return f"http://{shown}:{options['port']}/"

    def _ensure_demo(self, url: str):
        from django.contrib.auth import get_user_model

        from tenants.models import Customer
        from tenants.services import customer_create

        if Customer.objects.filter(slug=DEMO_SLUG).exists():
            self.stdout.write(
                f"Demo customer '{DEMO_SLUG}' exists; log in as '{DEMO_USER}' with the password "
                f"printed at first start (reset: manage.py changepassword {DEMO_USER})."
            )
            return
        password = secrets.token_urlsafe(12)
        customer_create(
            slug=DEMO_SLUG,
            name="Demo Customer",
            time_zone=settings.TIME_ZONE,
            admin_username=DEMO_USER,
            password=password,
        )
        # The demo login is also provider staff, so the Django admin can be explored.
        get_user_model().objects.filter(username=DEMO_USER).update(is_staff=True, is_superuser=True)
        bar = "=" * 66
        self.stdout.write(
            f"{bar}\n Demo customer created. Log in at {url}\n"
            f"   username: {DEMO_USER}\n   password: {password}\n"
            f" (printed only this once)\n{bar}"
        )

    def _commands(self, options):
        python = sys.executable
        bind = f"{options['host']}:{options['port']}"
        return {
            "web": [
                python, "-m", "gunicorn", "acura_portal.wsgi:application",
                "--config", "python:acura_portal.gunicorn_conf",
                "--bind", bind,
                "--workers", str(options["web_workers"]),
                "--threads", "4",
            ],
            "worker": [
                python, "-m", "celery", "-A", "acura_portal", "--quiet", "worker",
                "--loglevel", "INFO",
                "--concurrency", str(options["worker_concurrency"]),
                "--hostname", "worker@%h",
                "--without-mingle", "--without-gossip",
            ],
            "beat": [
                python, "-m", "celery", "-A", "acura_portal", "--quiet", "beat",
                "--loglevel", "INFO",
                "--schedule", str(settings.DATA_DIR / "celerybeat-schedule"),
            ],
        }  # fmt: skip

    def _run_all(self, options):
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": os.environ.get(
                "DJANGO_SETTINGS_MODULE", "acura_portal.settings"
            ),
        }
        children: dict[str, subprocess.Popen] = {}
        stopping = False

        def stop(signum=None, frame=None):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        for name, argv in self._commands(options).items():
            children[name] = subprocess.Popen(argv, env=env, cwd=settings.BASE_DIR)
        self.stdout.write(
            f"Acura Portal is running on http://{options['host']}:{options['port']}/ "
            f"(web pid {children['web'].pid}, worker pid {children['worker'].pid}, "
            f"beat pid {children['beat'].pid}). Press Ctrl-C to stop."
        )
        self.stdout.flush()
        failed = None
        while not stopping:
            for name, child in children.items():
                if child.poll() is not None:
                    failed = (name, child.returncode)
                    stopping = True
                    break
            time.sleep(0.5)
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for child in children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if failed:
            self.stderr.write(f"The {failed[0]} process exited with code {failed[1]}; stopped all.")
            sys.exit(1)
        self.stdout.write("Stopped web, worker and beat.")
