"""Errors as JSON: DRF's own, plus the services' Django ValidationError (400, naming the field) and JobConflict
(409), so a service refusing bad input never reaches the caller as a 500."""

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from labeling.services.jobs.lifecycle import JobConflict


def as_drf_error(error: DjangoValidationError) -> ValidationError:
    """A service's ValidationError as DRF's: field errors stay under their field, others under non_field_errors."""
    if hasattr(error, "error_dict"):
        return ValidationError(error.message_dict)
    return ValidationError({"non_field_errors": error.messages})


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        exc = as_drf_error(exc)
    if isinstance(exc, JobConflict):
        set_rollback()
        return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
    return drf_exception_handler(exc, context)
