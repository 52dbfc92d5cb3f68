"""The JSON API, included at /api/ by labeling/urls.py: the resources (a router, browsable at /api/), the
labelling page's endpoints, tokens, and the OpenAPI schema with its Swagger UI and ReDoc pages."""

from django.urls import path
from rest_framework.routers import DefaultRouter

from labeling.api import auth, catalogue, docs, jobs, labels, ml, views, votes

router = DefaultRouter()
router.register("datasets", catalogue.DatasetViewSet, basename="api-dataset")
router.register("galaxies", catalogue.GalaxyViewSet, basename="api-galaxy")
router.register("trees", votes.TreeViewSet, basename="api-tree")
router.register("vote-summaries", votes.VoteSummaryViewSet, basename="api-vote-summary")
router.register("classifications", votes.ClassificationViewSet, basename="api-classification")
router.register("schemas", labels.SchemaViewSet, basename="api-schema")
router.register("expert-labels", labels.ExpertLabelViewSet, basename="api-expert-label")
router.register("consensus-labels", labels.ConsensusLabelViewSet, basename="api-consensus-label")
router.register("model-versions", ml.ModelVersionViewSet, basename="api-model-version")
router.register("clusterings", ml.ClusteringViewSet, basename="api-clustering")
router.register("predictions", ml.PredictionViewSet, basename="api-prediction")
router.register("jobs", jobs.JobViewSet, basename="api-job")

urlpatterns = [
    path("queue/next/", views.QueueNextView.as_view(), name="api-queue-next"),
    path("queue/<int:entry_id>/skip/", views.QueueSkipView.as_view(), name="api-queue-skip"),
    path("labels/", views.LabelCreateView.as_view(), name="api-labels"),
    path("labels/undo/", views.LabelUndoView.as_view(), name="api-labels-undo"),
    path("labels/bulk/", views.BulkLabelView.as_view(), name="api-labels-bulk"),
    path("auth/token/", auth.TokenView.as_view(), name="api-token"),
    path("schema/", docs.SchemaView.as_view(), name="api-schema"),
    path("docs/", docs.SwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("redoc/", docs.RedocView.as_view(url_name="api-schema"), name="api-redoc"),
    *router.urls,
]
