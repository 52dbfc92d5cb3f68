"""Django admin for every model: the admin's back office for datasets, trees, votes and labels."""

from django.contrib import admin

from labeling import models
from labeling.admin_actions import (
    activate_on_training_dataset,
    build_index_latest,
    cluster_latest_kmeans,
    extract_features_default,
    job_cancel_selected,
    job_rerun_selected,
    map_latest_umap,
    rebuild_queues,
    refit_probability_model,
    roll_back_active_version,
)


@admin.register(models.Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["name", "survey", "licence", "active_version", "created_at"]
    list_select_related = ["active_version"]
    search_fields = ["name", "survey", "description"]
    prepopulated_fields = {"slug": ["name"]}
    # Changed only by activation (a chain of jobs that also keeps the history the rollback reads), never by hand.
    readonly_fields = ["active_version"]
    actions = [extract_features_default, build_index_latest, cluster_latest_kmeans, map_latest_umap,
               refit_probability_model, rebuild_queues, "start_retrain_cycle", roll_back_active_version]

    @admin.action(description="Start a retrain cycle (the defaults: from the galaxy backbone, 96 px, 15 epochs)")
    def start_retrain_cycle(self, request, queryset):
        from labeling.admin_actions import _for_each_dataset
        from labeling.services.learning.retrain import default_base, retrain_start

        # JobConflict, TrainingDataError and bad settings are ValueErrors: each becomes an admin message.
        _for_each_dataset(self, request, queryset, lambda dataset: retrain_start(
            dataset=dataset, base=default_base(), user=request.user))


@admin.register(models.Galaxy)
class GalaxyAdmin(admin.ModelAdmin):
    list_display = ["external_id", "dataset", "ra", "dec", "width", "height", "created_at"]
    list_filter = ["dataset"]
    search_fields = ["external_id", "content_hash"]
    list_select_related = ["dataset"]
    readonly_fields = ["content_hash", "created_at"]


class AnswerInline(admin.TabularInline):
    model = models.Answer
    fk_name = "question"
    extra = 0


@admin.register(models.DecisionTree)
class DecisionTreeAdmin(admin.ModelAdmin):
    list_display = ["name", "title", "version", "created_at"]
    search_fields = ["name", "title"]


@admin.register(models.Question)
class QuestionAdmin(admin.ModelAdmin):
    list_display = ["key", "tree", "kind", "order", "text"]
    list_filter = ["tree", "kind"]
    search_fields = ["key", "text"]
    inlines = [AnswerInline]


@admin.register(models.Answer)
class AnswerAdmin(admin.ModelAdmin):
    list_display = ["key", "question", "text", "next_question", "order"]
    list_filter = ["question__tree"]
    search_fields = ["key", "text"]
    list_select_related = ["question", "next_question"]


@admin.register(models.VolunteerClassification)
class VolunteerClassificationAdmin(admin.ModelAdmin):
    list_display = ["galaxy", "tree", "user", "volunteer_id", "source", "created_at"]
    list_filter = ["tree", "source"]
    search_fields = ["galaxy__external_id", "volunteer_id", "user__username"]
    raw_id_fields = ["galaxy", "user"]
    list_select_related = ["galaxy__dataset", "tree", "user"]


@admin.register(models.VoteSummary)
class VoteSummaryAdmin(admin.ModelAdmin):
    list_display = ["galaxy", "question", "source", "total", "updated_at"]
    list_filter = ["source", "question__tree"]
    search_fields = ["galaxy__external_id"]
    raw_id_fields = ["galaxy"]
    list_select_related = ["galaxy__dataset", "question__tree"]


@admin.register(models.VolunteerExclusion)
class VolunteerExclusionAdmin(admin.ModelAdmin):
    list_display = ["volunteer", "reason", "excluded_by", "excluded_at", "included_by", "included_at"]
    search_fields = ["volunteer", "reason"]
    list_select_related = ["excluded_by", "included_by"]

    # Read-only here: an exclusion written or undone in the admin would skip the recount of the galaxies the
    # volunteer classified. The page of volunteers (/volunteers/) excludes and includes.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(models.VolunteerWeight)
class VolunteerWeightAdmin(admin.ModelAdmin):
    list_display = ["volunteer", "dataset", "tree", "weight", "kappa", "computed_at"]
    list_filter = ["dataset", "tree"]
    search_fields = ["volunteer"]
    list_select_related = ["dataset", "tree"]

    def has_add_permission(self, request):  # written by weight_volunteers only
        return False

    def has_change_permission(self, request, obj=None):
        return False


class LabelClassInline(admin.TabularInline):
    model = models.LabelClass
    extra = 0


@admin.register(models.LabelSchema)
class LabelSchemaAdmin(admin.ModelAdmin):
    list_display = ["name", "title", "created_at"]
    search_fields = ["name", "title"]
    inlines = [LabelClassInline]


@admin.register(models.LabelClass)
class LabelClassAdmin(admin.ModelAdmin):
    list_display = ["key", "name", "schema", "order"]
    list_filter = ["schema"]


@admin.register(models.ConsensusRule)
class ConsensusRuleAdmin(admin.ModelAdmin):
    list_display = ["name", "schema", "tree", "default_threshold", "min_votes"]
    list_filter = ["schema", "tree"]


@admin.register(models.ConsensusLabel)
class ConsensusLabelAdmin(admin.ModelAdmin):
    list_display = ["galaxy", "schema", "label_class", "agreement", "n_votes", "computed_at"]
    list_filter = ["schema", "label_class"]
    search_fields = ["galaxy__external_id"]
    raw_id_fields = ["galaxy"]
    list_select_related = ["galaxy__dataset", "schema", "label_class"]


@admin.register(models.ExpertLabel)
class ExpertLabelAdmin(admin.ModelAdmin):
    list_display = ["galaxy", "schema", "label_class", "expert", "provenance", "created_at", "superseded_at"]
    list_filter = ["schema", "label_class", "provenance"]
    search_fields = ["galaxy__external_id", "expert__username", "note"]
    raw_id_fields = ["galaxy", "expert"]
    list_select_related = ["galaxy__dataset", "schema", "label_class", "expert"]

    # Read-only here: an edit in the admin would rewrite an expert's label in place (no history, and admins would
    # change other experts' labels, which nobody may do). Labels change through the labelling page and the API,
    # which keep the history; admins withdraw labels there.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(models.ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["name", "backbone", "weights", "image_size", "status", "active_on", "method", "trained_on",
                    "created_at"]
    list_filter = ["backbone", "weights", "status"]
    search_fields = ["name", "checkpoint"]
    readonly_fields = ["checkpoint_sha256", "created_at"]
    raw_id_fields = ["parent", "created_by"]
    list_select_related = ["trained_on"]
    actions = [activate_on_training_dataset]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("active_for")

    @admin.display(description="active on")
    def active_on(self, version):
        return ", ".join(dataset.name for dataset in version.active_for.all()) or "–"


@admin.register(models.FeatureSet)
class FeatureSetAdmin(admin.ModelAdmin):
    list_display = ["id", "dataset", "model_version", "rotation_invariant", "count", "index_kind", "index_recall",
                    "updated_at"]
    list_filter = ["dataset", "rotation_invariant", "index_kind"]
    list_select_related = ["dataset", "model_version"]
    readonly_fields = ["store_path", "dims", "dtype", "count", "failed", "index_kind", "index_count", "index_recall",
                       "index_built_at", "created_at", "updated_at"]


@admin.register(models.Clustering)
class ClusteringAdmin(admin.ModelAdmin):
    list_display = ["id", "feature_set", "method", "k", "created_at"]
    list_filter = ["method"]
    list_select_related = ["feature_set__dataset", "feature_set__model_version"]
    readonly_fields = ["parameters", "metrics", "sizes", "created_at"]
    raw_id_fields = ["feature_set", "created_by"]


@admin.register(models.ClusterAssignment)
class ClusterAssignmentAdmin(admin.ModelAdmin):
    list_display = ["clustering", "galaxy", "cluster", "distance"]
    list_filter = ["clustering"]
    raw_id_fields = ["clustering", "galaxy"]
    list_select_related = ["galaxy__dataset", "clustering__feature_set__dataset",
                           "clustering__feature_set__model_version"]


@admin.register(models.Embedding)
class EmbeddingAdmin(admin.ModelAdmin):
    list_display = ["id", "feature_set", "method", "schema", "created_at"]
    list_filter = ["method"]
    raw_id_fields = ["feature_set", "created_by"]


@admin.register(models.EmbeddingPoint)
class EmbeddingPointAdmin(admin.ModelAdmin):
    list_display = ["embedding", "galaxy", "x", "y"]
    raw_id_fields = ["embedding", "galaxy"]


@admin.register(models.Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "dataset", "status", "progress", "message", "created_by", "created_at"]
    list_filter = ["kind", "status"]
    search_fields = ["message", "error"]
    readonly_fields = ["kind", "arguments", "dataset", "status", "progress", "message", "result", "error",
                       "cancel_requested", "created_by", "created_at", "started_at", "finished_at", "heartbeat_at",
                       "worker_host", "worker_pid", "rerun_of"]
    actions = [job_cancel_selected, job_rerun_selected]


@admin.register(models.QueuePolicy)
class QueuePolicyAdmin(admin.ModelAdmin):
    list_display = ["dataset", "strategy", "batch_size", "double_label_share", "refit_every", "min_labels",
                    "updated_at"]
    list_select_related = ["dataset"]
    readonly_fields = ["updated_by", "updated_at"]

    def save_model(self, request, obj, form, change):
        from django.utils import timezone

        obj.updated_by, obj.updated_at = request.user, timezone.now()
        super().save_model(request, obj, form, change)


@admin.register(models.QueueEntry)
class QueueEntryAdmin(admin.ModelAdmin):
    list_display = ["galaxy", "expert", "schema", "rank", "strategy", "score", "double_label", "status", "created_at"]
    list_filter = ["status", "strategy", "double_label", "schema", "dataset"]
    list_select_related = ["galaxy", "expert", "schema"]
    raw_id_fields = ["galaxy", "expert", "model_version", "classifier"]


@admin.register(models.Classifier)
class ClassifierAdmin(admin.ModelAdmin):
    list_display = ["pk", "feature_set", "schema", "n_labels", "n_expert", "n_consensus", "calibrated", "created_at"]
    list_select_related = ["feature_set__dataset", "feature_set__model_version", "schema"]
    readonly_fields = ["feature_set", "schema", "path", "classes", "metrics"]


@admin.register(models.LabelResolution)
class LabelResolutionAdmin(admin.ModelAdmin):
    list_display = ["galaxy", "schema", "label_class", "resolved_by", "resolved_at"]
    list_select_related = ["galaxy", "schema", "label_class", "resolved_by"]
    raw_id_fields = ["galaxy"]


@admin.register(models.Simulation)
class SimulationAdmin(admin.ModelAdmin):
    list_display = ["pk", "dataset", "oracle", "created_at"]
    list_select_related = ["dataset"]
    readonly_fields = ["parameters", "curves", "savings", "seconds"]


@admin.register(models.ClassifyPolicy)
class ClassifyPolicyAdmin(admin.ModelAdmin):
    list_display = ["dataset", "tree", "retire_after", "early_rule", "useful_share", "weight_volunteers"]

    def save_model(self, request, obj, form, change):
        from labeling.services.votes.classify import subjects_ensure

        obj.updated_by = request.user
        super().save_model(request, obj, form, change)
        subjects_ensure(policy=obj)  # every galaxy with an image can be offered at once


@admin.action(description="Retire the selected galaxies (stop offering them)")
def retire_subjects(modeladmin, request, queryset):
    from django.utils import timezone

    count = queryset.filter(retired_at__isnull=True).update(retired_at=timezone.now(),
                                                            retired_reason=models.Subject.Retired.ADMIN)
    modeladmin.message_user(request, f"{count} galaxies retired")


@admin.action(description="Offer the selected galaxies again")
def unretire_subjects(modeladmin, request, queryset):
    count = queryset.filter(retired_at__isnull=False).update(retired_at=None, retired_reason="")
    modeladmin.message_user(request, f"{count} galaxies offered again")


@admin.register(models.Subject)
class SubjectAdmin(admin.ModelAdmin):
    list_display = ["galaxy", "tree", "n_classifications", "usefulness", "retired_at", "retired_reason"]
    list_filter = ["tree", "retired_reason", "dataset"]
    list_select_related = ["galaxy__dataset", "tree"]
    raw_id_fields = ["galaxy"]
    actions = [retire_subjects, unretire_subjects]
