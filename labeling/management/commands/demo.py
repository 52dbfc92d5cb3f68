"""Load the demo data and users: `python manage.py demo`. Safe to run again."""

from django.core.management.base import BaseCommand

from labeling.management.progress import PhaseBars
from labeling.services.demo.load import demo_load


class Command(BaseCommand):
    help = "Load the bundled real galaxies, the GZ2 Stripe 82 votes, simulated volunteers and the demo users."

    def add_arguments(self, parser):
        parser.add_argument("--no-stripe82", action="store_true", help="Skip the 19,761-galaxy GZ2 vote table.")
        parser.add_argument("--no-analysis", action="store_true",
                            help="Skip features, neighbour index, clusters and maps of the imaged datasets.")
        parser.add_argument("--url", default="http://127.0.0.1:8000/", help="The address printed for the demo.")

    def handle(self, *args, **options):
        # One bar (or, in a log, plain lines) per import phase; each dataset's "checking images" starts a new one.
        with PhaseBars(unit="row", stream=self.stderr) as progress:
            report = demo_load(progress=progress, include_stripe82=not options["no_stripe82"],
                               analyse=not options["no_analysis"])
        for line in report.lines:
            self.stdout.write(line)
        self.stdout.write(self.style.SUCCESS(f"\nDemo ready at {options['url']}"))
        for username, password in report.credentials.items():
            role = "admin (all pages and /admin/)" if username == "admin" else "expert"
            self.stdout.write(f"  log in as {username!r} with password {password!r}  - {role}")
