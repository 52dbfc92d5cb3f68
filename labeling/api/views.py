"""The labelling endpoints the expert's page calls: next galaxies, label, undo, skip, bulk label."""

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import PermissionDenied as Forbidden
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.api.errors import as_drf_error
from labeling.api.permissions import IsExpert
from labeling.api.serializers import BulkLabelSerializer, LabelSerializer, NextSerializer, QueueSerializer
from labeling.models import QueueEntry
from labeling.selectors.queue import entries_json, labelled_today
from labeling.services.labelling import actions


def _checked(serializer_class, data):
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class ExpertView(APIView):
    permission_classes = [IsAuthenticated, IsExpert]


class QueueNextView(ExpertView):
    """GET: the next galaxies of the signed-in expert's queue, with everything the labelling page shows."""

    @extend_schema(parameters=[NextSerializer], responses=OpenApiTypes.OBJECT)
    def get(self, request):
        data = _checked(NextSerializer, request.query_params)
        return Response(actions.queue_next(expert=request.user, dataset=data["dataset"], schema=data["schema"],
                                           count=data["count"], exclude=data["exclude"]))


class LabelCreateView(ExpertView):
    """POST: the signed-in expert's label for a galaxy (sending the same label again changes nothing)."""

    @extend_schema(request=LabelSerializer, responses={201: OpenApiTypes.OBJECT})
    def post(self, request):
        data = _checked(LabelSerializer, request.data)
        try:
            label = actions.label_give(expert=request.user, galaxy=data["galaxy"], schema=data["schema"],
                                       label_class=data["label_class"], note=data["note"])
        except DjangoValidationError as error:
            raise as_drf_error(error) from error
        return Response({"id": label.pk, "galaxy": label.galaxy_id, "label_class": label.label_class.key,
                         "labelled_today": labelled_today(expert=request.user)}, status=status.HTTP_201_CREATED)


class LabelUndoView(ExpertView):
    """POST: take back the signed-in expert's latest label in a dataset and schema."""

    @extend_schema(request=QueueSerializer, responses=OpenApiTypes.OBJECT)
    def post(self, request):
        data = _checked(QueueSerializer, request.data)
        undone = actions.label_undo(expert=request.user, dataset=data["dataset"], schema=data["schema"])
        if undone is None:
            return Response({"detail": "nothing to undo"}, status=status.HTTP_404_NOT_FOUND)
        label, entry = undone
        entry = QueueEntry.objects.select_related("galaxy", "model_version", "classifier").get(pk=entry.pk)
        shown = entries_json(entries=[entry], expert=request.user, dataset=data["dataset"], schema=data["schema"])
        return Response({"undone": {"galaxy": label.galaxy_id, "label_class": label.label_class.key},
                         "entry": shown[0],
                         "labelled_today": labelled_today(expert=request.user)})


class QueueSkipView(ExpertView):
    """POST: skip a galaxy of one's own queue."""

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def post(self, request, entry_id: int):
        entry = get_object_or_404(QueueEntry, pk=entry_id)
        try:
            actions.entry_skip(expert=request.user, entry=entry)
        except PermissionDenied as error:
            raise Forbidden(str(error)) from error
        return Response({"skipped": entry.pk})


class BulkLabelView(ExpertView):
    """POST: one class for many galaxies at once, all or none."""

    @extend_schema(request=BulkLabelSerializer, responses={201: OpenApiTypes.OBJECT})
    def post(self, request):
        data = _checked(BulkLabelSerializer, request.data)
        try:
            result = actions.labels_bulk(expert=request.user, schema=data["schema"],
                                         label_class=data["label_class"], galaxy_ids=data["galaxies"],
                                         note=data["note"])
        except DjangoValidationError as error:
            raise as_drf_error(error) from error
        return Response(result, status=status.HTTP_201_CREATED)
