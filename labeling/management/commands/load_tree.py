"""Load decision trees: `python manage.py load_tree [FILE.json ...]` (no argument: the shipped gz2 and gz_decals)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from labeling.services.votes.trees import SHIPPED_TREES_DIR, TreeDefinitionError, read_tree_file, tree_load


class Command(BaseCommand):
    help = "Create or update decision trees from JSON definitions (see labeling/trees/gz2.json for the layout)."

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="*", type=Path)

    def handle(self, *args, files, **options):
        for path in files or sorted(SHIPPED_TREES_DIR.glob("*.json")):
            try:
                tree = tree_load(definition=read_tree_file(path))
            except TreeDefinitionError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(f"tree {tree.name!r}: {tree.questions.count()} questions from {path}")
