"""The data model: datasets of galaxies, decision trees with volunteer votes, label schemas with expert and
consensus labels. Writes go through labeling/services; rules that span relations live in labeling/selectors.py."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Dataset(models.Model):
    """A named collection of galaxies, usually one survey's catalogue or one import."""

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    survey = models.CharField(max_length=100, blank=True)
    description = models.TextField(blank=True)
    licence = models.CharField(max_length=200, blank=True)
    attribution = models.TextField(blank=True, help_text="Who to cite when the images or votes are used.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


def galaxy_image_path(galaxy: "Galaxy", filename: str) -> str:
    return f"galaxies/{galaxy.dataset.slug}/{filename}"


def galaxy_thumbnail_path(galaxy: "Galaxy", filename: str) -> str:
    return f"thumbnails/{galaxy.dataset.slug}/{filename}"


class Galaxy(models.Model):
    """One galaxy of a dataset. Catalogue-only galaxies (votes without pixels) have no image."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="galaxies")
    external_id = models.CharField(max_length=100, help_text="The catalogue's identifier, unique in the dataset.")
    image = models.ImageField(upload_to=galaxy_image_path, blank=True, max_length=300)
    thumbnail = models.ImageField(upload_to=galaxy_thumbnail_path, blank=True, max_length=300)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    ra = models.FloatField("right ascension (deg)", null=True, blank=True)
    dec = models.FloatField("declination (deg)", null=True, blank=True)
    content_hash = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the image file's bytes.")
    metadata = models.JSONField(default=dict, blank=True, help_text="Catalogue columns kept as they came.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["dataset", "id"]
        verbose_name_plural = "galaxies"
        constraints = [
            models.UniqueConstraint(fields=["dataset", "external_id"], name="galaxy_unique_external_id"),
            models.UniqueConstraint(
                fields=["dataset", "content_hash"], condition=~Q(content_hash=""), name="galaxy_unique_image"
            ),
            models.CheckConstraint(
                condition=Q(ra__isnull=True) | (Q(ra__gte=0) & Q(ra__lt=360)), name="galaxy_ra_in_range"
            ),
            models.CheckConstraint(
                condition=Q(dec__isnull=True) | (Q(dec__gte=-90) & Q(dec__lte=90)), name="galaxy_dec_in_range"
            ),
        ]

    def __str__(self):
        return f"{self.dataset.name}:{self.external_id}"

    @property
    def has_image(self) -> bool:
        return bool(self.image)


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
        """The tree as the plain dictionary mlcore.votes works with (the JSON layout of labeling/trees/)."""
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

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["galaxy", "tree"])]

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


class LabelSchema(models.Model):
    """A set of classes experts choose from, e.g. Galaxy10's ten classes."""

    name = models.SlugField(max_length=100, unique=True)
    title = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.title or self.name


class LabelClass(models.Model):
    schema = models.ForeignKey(LabelSchema, on_delete=models.CASCADE, related_name="classes")
    key = models.CharField(max_length=100, help_text="Stable identifier, as it appears in label files.")
    name = models.CharField(max_length=200, help_text="Display name.")
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["schema", "order", "key"]
        verbose_name_plural = "label classes"
        constraints = [models.UniqueConstraint(fields=["schema", "key"], name="label_class_unique_key")]

    def __str__(self):
        return self.name


class ConsensusRule(models.Model):
    """How a decision tree's vote fractions map to a schema's class (see mlcore.votes.consensus)."""

    schema = models.ForeignKey(LabelSchema, on_delete=models.CASCADE, related_name="rules")
    tree = models.ForeignKey(DecisionTree, on_delete=models.CASCADE, related_name="rules")
    name = models.SlugField(max_length=100)
    description = models.TextField(blank=True)
    default_threshold = models.FloatField(default=0.6)
    min_votes = models.PositiveIntegerField(default=10, help_text="Fewer votes on the first question: no consensus.")
    conditions = models.JSONField(
        help_text='{"class key": [{"question": "q", "answers": ["a"], "threshold": 0.6}, ...], ...}'
    )
    uncertain_class_key = models.CharField(max_length=100, default="uncertain")

    class Meta:
        ordering = ["schema", "name"]
        constraints = [models.UniqueConstraint(fields=["schema", "name"], name="consensus_rule_unique_name")]

    def __str__(self):
        return f"{self.schema.name}:{self.name}"


class ConsensusLabel(models.Model):
    """The class the volunteers' votes point to under a rule. Never overwrites an expert's label."""

    galaxy = models.ForeignKey(Galaxy, on_delete=models.CASCADE, related_name="consensus_labels")
    schema = models.ForeignKey(LabelSchema, on_delete=models.CASCADE, related_name="consensus_labels")
    rule = models.ForeignKey(ConsensusRule, on_delete=models.CASCADE, related_name="labels")
    label_class = models.ForeignKey(LabelClass, on_delete=models.CASCADE, related_name="consensus_labels")
    agreement = models.FloatField(help_text="The weakest vote fraction along the matched class's path.")
    n_votes = models.PositiveIntegerField()
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["galaxy", "schema"]
        constraints = [models.UniqueConstraint(fields=["galaxy", "schema"], name="consensus_label_unique")]

    def __str__(self):
        return f"{self.galaxy}: {self.label_class}"


class ExpertLabel(models.Model):
    """An expert's class for a galaxy. A change supersedes the old row instead of editing it, so history is kept.

    Imported labels have no expert; their provenance says where they came from ("imported from labels.csv").
    """

    galaxy = models.ForeignKey(Galaxy, on_delete=models.CASCADE, related_name="expert_labels")
    schema = models.ForeignKey(LabelSchema, on_delete=models.CASCADE, related_name="expert_labels")
    label_class = models.ForeignKey(LabelClass, on_delete=models.PROTECT, related_name="expert_labels")
    expert = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="expert_labels"
    )
    note = models.TextField(blank=True)
    provenance = models.CharField(max_length=300, default="web")
    created_at = models.DateTimeField(default=timezone.now)
    superseded_at = models.DateTimeField(null=True, blank=True, help_text="Set when a newer label replaced this one.")

    class Meta:
        ordering = ["galaxy", "schema", "-created_at"]
        indexes = [models.Index(fields=["schema", "superseded_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["galaxy", "schema", "expert"],
                condition=Q(superseded_at__isnull=True, expert__isnull=False),
                name="expert_label_one_current_per_expert",
            ),
            models.UniqueConstraint(
                fields=["galaxy", "schema", "provenance"],
                condition=Q(superseded_at__isnull=True, expert__isnull=True),
                name="expert_label_one_current_per_import",
            ),
        ]

    def __str__(self):
        return f"{self.galaxy}: {self.label_class} by {self.expert or self.provenance}"

    @property
    def is_current(self) -> bool:
        return self.superseded_at is None
