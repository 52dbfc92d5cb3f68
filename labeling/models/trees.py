"""Decision trees as data, and the volunteers' classifications and vote summaries of galaxies."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from labeling.models.catalogue import Galaxy


class DecisionTree(models.Model):
    """A Galaxy Zoo style decision tree: questions whose answers lead to further questions."""

    name = models.SlugField(max_length=100, unique=True)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    version = models.CharField(max_length=50, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.title or self.name

    def as_definition(self) -> dict:
        """The tree as the plain dictionary mlcore.votes.tree works with (the JSON layout of labeling/trees/)."""
        questions = []
        for question in self.questions.prefetch_related("answers__next_question").select_related("next_question"):
            entry = {
                "key": question.key,
                "text": question.text,
                "kind": question.kind,
                "help": question.help_text,
                "aliases": question.aliases,
                "answers": [],
            }
            if question.kind == Question.Kind.MULTIPLE:
                entry["next"] = question.next_question.key if question.next_question else None
            for answer in question.answers.all():
                item = {
                    "key": answer.key,
                    "text": answer.text,
                    "help": answer.help_text,
                    "examples": answer.example_images,
                    "aliases": answer.aliases,
                }
                if question.kind == Question.Kind.SINGLE:
                    item["next"] = answer.next_question.key if answer.next_question else None
                entry["answers"].append(item)
            questions.append(entry)
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "version": self.version,
            "questions": questions,
        }


class Question(models.Model):
    class Kind(models.TextChoices):
        SINGLE = "single", "single choice"
        MULTIPLE = "multiple", "multiple choice (checkboxes)"

    tree = models.ForeignKey(DecisionTree, on_delete=models.CASCADE, related_name="questions")
    key = models.CharField(max_length=100, help_text="Column prefix in catalogues, e.g. t01_smooth_or_features.")
    text = models.CharField(max_length=300)
    help_text = models.TextField(blank=True)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.SINGLE)
    order = models.PositiveIntegerField()
    # Where a multiple-choice question leads whatever boxes are ticked; single-choice answers carry their own.
    next_question = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    aliases = models.JSONField(default=dict, blank=True, help_text='Other names, e.g. {"kaggle": "Class1"}.')

    class Meta:
        ordering = ["tree", "order"]
        constraints = [models.UniqueConstraint(fields=["tree", "key"], name="question_unique_key")]

    def __str__(self):
        return f"{self.tree.name}:{self.key}"


class Answer(models.Model):
    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="answers")
    key = models.CharField(max_length=100)
    text = models.CharField(max_length=200)
    help_text = models.TextField(blank=True)
    order = models.PositiveIntegerField()
    next_question = models.ForeignKey(
        Question, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The question this answer leads to; empty ends the classification.",
    )
    example_images = models.JSONField(
        default=list, blank=True, help_text='Example galaxies: [{"image": "static/path.jpg", "caption": "..."}].'
    )
    aliases = models.JSONField(default=dict, blank=True, help_text='Other names, e.g. {"kaggle": "Class1.1"}.')

    class Meta:
        ordering = ["question", "order"]
        constraints = [models.UniqueConstraint(fields=["question", "key"], name="answer_unique_key")]

    def __str__(self):
        return f"{self.question.key}_{self.key}"


class VolunteerClassification(models.Model):
    """One volunteer's walk through a decision tree for one galaxy."""

    class Source(models.TextChoices):
        WEB = "web", "classified in this application"
        IMPORTED = "imported", "imported"
        SIMULATED = "simulated", "simulated (demo data)"

    galaxy = models.ForeignKey(Galaxy, on_delete=models.CASCADE, related_name="classifications")
    tree = models.ForeignKey(DecisionTree, on_delete=models.PROTECT, related_name="classifications")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    volunteer_id = models.CharField(max_length=100, blank=True, help_text="External or anonymous volunteer id.")
    answers = models.JSONField(help_text='{"question key": "answer key"} or a list of keys for checkboxes.')
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.WEB)
    created_at = models.DateTimeField(default=timezone.now)
    external_id = models.CharField(max_length=100, blank=True, help_text="The classification's id where it came "
                                                                         "from (a Panoptes classification_id).")

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["galaxy", "tree"])]
        constraints = [
            # One classification per volunteer, galaxy and tree in this application: a double submit (two clicks,
            # a retried request) stores one. volunteer_id is "user:<id>" or "session:<key>" for the classify page.
            models.UniqueConstraint(fields=["galaxy", "tree", "volunteer_id"],
                                    condition=models.Q(source="web") & ~models.Q(volunteer_id=""),
                                    name="classification_one_per_volunteer"),
            # An imported classification is stored once however often its export is imported. Tree and id lead the
            # index: an import asks which of a batch of ids its tree already holds.
            models.UniqueConstraint(fields=["tree", "external_id", "galaxy"], condition=~models.Q(external_id=""),
                                    name="classification_unique_external_id"),
        ]

    def __str__(self):
        who = self.user or self.volunteer_id or "anonymous"
        return f"{who} on {self.galaxy}"


class VoteSummary(models.Model):
    """Per galaxy and question: how many volunteers chose each answer, and the fractions."""

    class Source(models.TextChoices):
        CATALOGUE = "catalogue", "imported from a catalogue"
        AGGREGATED = "aggregated", "aggregated from classifications"

    galaxy = models.ForeignKey(Galaxy, on_delete=models.CASCADE, related_name="vote_summaries")
    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="vote_summaries")
    source = models.CharField(max_length=10, choices=Source.choices)
    counts = models.JSONField(null=True, blank=True, help_text="Votes per answer key; empty when only fractions "
                                                                 "were published.")
    total = models.PositiveIntegerField(null=True, blank=True, help_text="Volunteers who answered this question.")
    fractions = models.JSONField(help_text="Fraction of this question's votes per answer key.")
    reach = models.FloatField(null=True, blank=True, help_text="Share of the galaxy's volunteers who reached "
                                                                 "this question.")
    extra = models.JSONField(default=dict, blank=True, help_text="Other published columns per answer, e.g. "
                                                                 "debiased fractions.")
    imported_from = models.CharField(max_length=300, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["galaxy", "question__order"]
        verbose_name_plural = "vote summaries"
        constraints = [
            models.UniqueConstraint(fields=["galaxy", "question", "source"], name="vote_summary_unique"),
        ]

    def __str__(self):
        return f"{self.galaxy} {self.question.key} ({self.source})"
