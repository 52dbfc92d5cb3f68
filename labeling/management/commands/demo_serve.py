"""Run the web server and one background worker together, for the demo: `python manage.py demo_serve`."""

import signal
import subprocess
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Start one django-q2 worker (qcluster) and the development web server; Ctrl-C stops both."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args, **options):
        # SIGTERM (kill, a closing terminal, a process manager) unwinds like Ctrl-C, so the worker is stopped too
        # instead of being left running on its own.
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))
        worker = subprocess.Popen([sys.executable, sys.argv[0], "qcluster"])
        url = f"http://{options['host']}:{options['port']}/"
        self.stdout.write(self.style.SUCCESS(f"Serving {url} with one background worker (pid {worker.pid}); "
                                             "logins are printed above and kept in "
                                             f"{settings.VAR_DIR / 'demo-credentials.json'}. The API and its "
                                             f"documentation: {url}api/docs/. Ctrl-C stops."))
        try:
            call_command("runserver", f"{options['host']}:{options['port']}", use_reloader=False)
        finally:
            worker.terminate()
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
