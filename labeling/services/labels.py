"""Writes of expert labels. A change supersedes the current label rather than editing it."""

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from labeling.models import ExpertLabel, Galaxy, LabelClass, LabelSchema

EXPERTS_GROUP = "experts"


def user_is_expert(user: AbstractBaseUser) -> bool:
    """Experts label; admins (staff) may too. The group lookup is cached on the user for the request."""
    if not (user and user.is_authenticated):
        return False
    if user.is_superuser or user.is_staff:
        return True
    cached = getattr(user, "_is_expert", None)
    if cached is None:
        cached = user._is_expert = user.groups.filter(name=EXPERTS_GROUP).exists()
    return cached


@transaction.atomic
def expert_label_set(
    *,
    galaxy: Galaxy,
    schema: LabelSchema,
    label_class: LabelClass,
    expert: AbstractBaseUser | None,
    note: str = "",
    provenance: str = "web",
) -> ExpertLabel:
    """Give ``galaxy`` the class ``label_class`` from ``expert`` (or from an import when expert is None).

    Setting the same class and note again returns the current label unchanged; a different one supersedes it and
    keeps it as history.

    Raises:
        PermissionDenied: when ``expert`` is not in the experts group.
        ValidationError: when the class belongs to another schema.
    """
    if expert is not None and not user_is_expert(expert):
        raise PermissionDenied(f"{expert} is not in the '{EXPERTS_GROUP}' group")
    if label_class.schema_id != schema.id:
        raise ValidationError(f"class {label_class.key!r} is not part of schema {schema.name!r}")
    current_rows = ExpertLabel.objects.select_for_update().filter(
        galaxy=galaxy, schema=schema, superseded_at__isnull=True
    )
    current_rows = current_rows.filter(expert=expert) if expert else current_rows.filter(
        expert__isnull=True, provenance=provenance
    )
    current = current_rows.first()
    if current and current.label_class_id == label_class.id and current.note == note:
        return current
    now = timezone.now()
    if current:
        current.superseded_at = now
        current.save(update_fields=["superseded_at"])
    return ExpertLabel.objects.create(
        galaxy=galaxy, schema=schema, label_class=label_class, expert=expert, note=note,
        provenance=provenance, created_at=now,
    )


class LabelNotCurrent(ValueError):
    """The label was already replaced or withdrawn: only the label in force can be changed."""


@transaction.atomic
def expert_label_withdraw(*, label: ExpertLabel, by: AbstractBaseUser) -> ExpertLabel:
    """Withdraw a label in force: it stays as history (superseded now, with no successor), and the galaxy has no
    label from that expert (or that import) any more.

    Raises:
        PermissionDenied: when ``by`` is neither the label's expert nor an admin.
        LabelNotCurrent: when the label was already replaced or withdrawn.
    """
    if label.expert_id != by.pk and not (by.is_staff or by.is_superuser):
        raise PermissionDenied("experts may only withdraw their own labels")
    updated = ExpertLabel.objects.filter(pk=label.pk, superseded_at__isnull=True).update(superseded_at=timezone.now())
    if not updated:
        raise LabelNotCurrent(f"label {label.pk} was already replaced or withdrawn")
    label.refresh_from_db()
    return label
