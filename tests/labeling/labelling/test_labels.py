import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse

from labeling.models import ExpertLabel
from labeling.services.labelling.labels import expert_label_set, user_is_expert
from labeling.services.votes.schemas import schema_get_or_load_shipped
from tests.labeling.factories import make_galaxies

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema():
    return schema_get_or_load_shipped(name="broad-morphology")


def cls(schema, key):
    return schema.classes.get(key=key)


def test_an_expert_label_is_stored_with_its_expert_and_note(schema, expert):
    galaxy = make_galaxies(1)[0]
    label = expert_label_set(galaxy=galaxy, schema=schema, label_class=cls(schema, "spiral"), expert=expert,
                             note="two clear arms")
    assert (label.expert, label.note, label.is_current) == (expert, "two clear arms", True)


def test_changing_a_label_keeps_the_old_one_as_history(schema, expert):
    galaxy = make_galaxies(1)[0]
    first = expert_label_set(galaxy=galaxy, schema=schema, label_class=cls(schema, "spiral"), expert=expert)
    second = expert_label_set(galaxy=galaxy, schema=schema, label_class=cls(schema, "lenticular"), expert=expert)
    first.refresh_from_db()
    assert first.superseded_at is not None and second.is_current
    assert ExpertLabel.objects.filter(galaxy=galaxy).count() == 2
    current = ExpertLabel.objects.filter(galaxy=galaxy, superseded_at__isnull=True)
    assert [label.label_class.key for label in current] == ["lenticular"]


def test_setting_the_same_label_again_adds_no_history(schema, expert):
    galaxy = make_galaxies(1)[0]
    expert_label_set(galaxy=galaxy, schema=schema, label_class=cls(schema, "spiral"), expert=expert)
    expert_label_set(galaxy=galaxy, schema=schema, label_class=cls(schema, "spiral"), expert=expert)
    assert ExpertLabel.objects.count() == 1


def test_two_experts_each_keep_their_own_current_label(schema, expert, second_expert):
    galaxy = make_galaxies(1)[0]
    expert_label_set(galaxy=galaxy, schema=schema, label_class=cls(schema, "spiral"), expert=expert)
    expert_label_set(galaxy=galaxy, schema=schema, label_class=cls(schema, "elliptical"), expert=second_expert)
    assert ExpertLabel.objects.filter(superseded_at__isnull=True).count() == 2


def test_a_volunteer_or_outsider_cannot_give_expert_labels(schema, volunteer, outsider):
    galaxy = make_galaxies(1)[0]
    for user in (volunteer, outsider):
        assert not user_is_expert(user)
        with pytest.raises(PermissionDenied):
            expert_label_set(galaxy=galaxy, schema=schema, label_class=cls(schema, "spiral"), expert=user)
    assert not ExpertLabel.objects.exists()


def test_a_class_of_another_schema_is_refused(schema, expert):
    other = schema_get_or_load_shipped(name="galaxy10")
    galaxy = make_galaxies(1)[0]
    with pytest.raises(ValidationError, match="not part of schema"):
        expert_label_set(galaxy=galaxy, schema=schema, label_class=other.classes.get(key="5"), expert=expert)


def test_the_database_refuses_two_current_labels_from_one_expert(schema, expert):
    galaxy = make_galaxies(1)[0]
    expert_label_set(galaxy=galaxy, schema=schema, label_class=cls(schema, "spiral"), expert=expert)
    with pytest.raises(IntegrityError), transaction.atomic():
        ExpertLabel.objects.create(galaxy=galaxy, schema=schema, label_class=cls(schema, "elliptical"),
                                   expert=expert)


def test_imported_labels_are_kept_per_provenance(schema):
    galaxy = make_galaxies(1)[0]
    expert_label_set(galaxy=galaxy, schema=schema, label_class=cls(schema, "spiral"), expert=None,
                     provenance="imported from a.csv")
    expert_label_set(galaxy=galaxy, schema=schema, label_class=cls(schema, "spiral"), expert=None,
                     provenance="imported from a.csv")
    expert_label_set(galaxy=galaxy, schema=schema, label_class=cls(schema, "elliptical"), expert=None,
                     provenance="imported from b.csv")
    assert ExpertLabel.objects.count() == 2


def test_the_admin_site_shows_labels_but_edits_none(client, schema, expert, admin_user):
    label = expert_label_set(galaxy=make_galaxies(1)[0], schema=schema, expert=expert,
                             label_class=cls(schema, "spiral"))
    client.force_login(admin_user)
    change_url = reverse("admin:labeling_expertlabel_change", args=[label.pk])
    page = client.get(change_url)
    assert page.status_code == 200 and b'name="label_class"' not in page.content  # shown read-only
    other = cls(schema, "elliptical")
    refused = client.post(change_url, {"galaxy": label.galaxy_id, "schema": schema.pk, "label_class": other.pk,
                                       "expert": expert.pk, "provenance": "web"})
    assert refused.status_code == 403
    delete_url = reverse("admin:labeling_expertlabel_delete", args=[label.pk])
    assert client.post(delete_url, {"post": "yes"}).status_code == 403
    assert client.get(reverse("admin:labeling_expertlabel_add")).status_code == 403
    label.refresh_from_db()
    assert label.label_class.key == "spiral" and label.is_current
