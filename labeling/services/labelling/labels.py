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


class LabelNotCurrent(ValueError):
    """The label was already replaced or withdrawn: only the label in force can be changed."""


def galaxy_lock(galaxy_id: int) -> None:
    """Hold the galaxy's row lock until the transaction ends. Every write of a galaxy's labels or classifications
    takes it first, so two at the same instant take turns: locking the current label instead locks nothing while
    the galaxy has none, and both would insert one. Only the galaxy's row (of="self", no ordering): Galaxy's
    default ordering joins its dataset, and FOR UPDATE would then lock the dataset's row and queue every write of
    the dataset behind one lock."""
    Galaxy.objects.select_for_update(of=("self",)).filter(pk=galaxy_id).order_by().values_list("pk").first()


@transaction.atomic
def expert_label_set(
    *,
    galaxy: Galaxy,
    schema: LabelSchema,
    label_class: LabelClass,
    expert: AbstractBaseUser | None,
    note: str = "",
    provenance: str = "web",
    replaces: ExpertLabel | None = None,
) -> ExpertLabel:
    """Give ``galaxy`` the class ``label_class`` from ``expert`` (or from an import when expert is None).

    Setting the same class and note again returns the current label unchanged; a different one supersedes it and
    keeps it as history. ``replaces``: the label the caller means to change, which must still be in force.

    Raises:
        PermissionDenied: when ``expert`` is not in the experts group.
        ValidationError: when the class belongs to another schema.
        LabelNotCurrent: when ``replaces`` was replaced or withdrawn in the meantime.
    """
    if expert is not None and not user_is_expert(expert):
        raise PermissionDenied(f"{expert} is not in the '{EXPERTS_GROUP}' group")
    if label_class.schema_id != schema.id:
        raise ValidationError(f"class {label_class.key!r} is not part of schema {schema.name!r}")
    galaxy_lock(galaxy.pk)
    current_rows = ExpertLabel.objects.filter(galaxy=galaxy, schema=schema, superseded_at__isnull=True).order_by()
    current_rows = current_rows.filter(expert=expert) if expert else current_rows.filter(
        expert__isnull=True, provenance=provenance
    )
    # The label's own row lock too: a withdrawal (expert_label_withdraw) updates it without the galaxy's.
    current = current_rows.select_for_update(of=("self",)).first()
    if replaces is not None and (current is None or current.pk != replaces.pk):
        raise LabelNotCurrent(f"label {replaces.pk} was already replaced or withdrawn; change the label in force")
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
