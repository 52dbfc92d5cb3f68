"""Django admin for every model: the admin's back office for datasets, trees, votes and labels."""

from django.contrib import admin

from labeling import models


@admin.register(models.Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["name", "survey", "licence", "created_at"]
    search_fields = ["name", "survey", "description"]
    prepopulated_fields = {"slug": ["name"]}


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
