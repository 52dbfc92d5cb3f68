"""The JSON API, included at /api/ by labeling/urls.py."""

from django.urls import path

from labeling.api import views

urlpatterns = [
    path("queue/next/", views.QueueNextView.as_view(), name="api-queue-next"),
    path("queue/<int:entry_id>/skip/", views.QueueSkipView.as_view(), name="api-queue-skip"),
    path("labels/", views.LabelCreateView.as_view(), name="api-labels"),
    path("labels/undo/", views.LabelUndoView.as_view(), name="api-labels-undo"),
    path("labels/bulk/", views.BulkLabelView.as_view(), name="api-labels-bulk"),
]
