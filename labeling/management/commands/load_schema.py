"""Load label schemas with their consensus rules: `python manage.py load_schema [FILE.json ...]`."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from labeling.services.votes.schemas import SHIPPED_SCHEMAS_DIR, SchemaDefinitionError, read_schema_file, schema_load


class Command(BaseCommand):
    help = "Create or update label schemas and consensus rules (see labeling/trees/schemas/ for the layout)."

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="*", type=Path)

    def handle(self, *args, files, **options):
        for path in files or sorted(SHIPPED_SCHEMAS_DIR.glob("*.json")):
            try:
                schema = schema_load(definition=read_schema_file(path))
            except SchemaDefinitionError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(f"schema {schema.name!r}: {schema.classes.count()} classes, "
                              f"{schema.rules.count()} consensus rules from {path}")
