"""What the permission tests of the API and of the pages share: the six roles, the objects each role acts on, and
clients that send a request as a role (with or without the CSRF check a browser gets)."""

import json
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import User
from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.test import Client

from labeling.models import ExpertLabel, Job, QueueEntry
from labeling.services.labelling.labels import expert_label_set
from labeling.services.labelling.queue import queue_build, queue_build_start
from tests.labeling.api_helpers import World
from tests.labeling.queue_helpers import policy

ROLES = ("anonymous", "volunteer", "outsider", "expert", "second_expert", "admin")
EVERYONE = frozenset(ROLES)
SIGNED_IN = EVERYONE - {"anonymous"}
READERS = frozenset({"expert", "second_expert", "admin"})
ADMIN = frozenset({"admin"})


@dataclass
class Context:
    """What a request needs: the world, the users by role, and the objects each role acts on."""

    world: World
    users: dict[str, User | None]
    job: Job

    def user(self, role: str) -> User | None:
        return self.users[role]

    def actor(self, role: str) -> User:
        """The role's user when it may label, else the expert: a denied role acts on a real expert's objects."""
        return self.users[role] if role in READERS else self.users["expert"]

    def galaxy(self, index: int = 0):
        return self.world.dataset.galaxies.order_by("pk")[index]

    def own_label(self, role: str) -> ExpertLabel:
        """A galaxy10 label in force, given by the role's user (or by the expert, for a role that cannot label)."""
        return expert_label_set(galaxy=self.galaxy(5), schema=self.world.schema,
                                label_class=self.world.schema.classes.get(key="5"), expert=self.actor(role))

    def own_entry(self, role: str) -> QueueEntry:
        return QueueEntry.objects.filter(expert=self.actor(role), status=QueueEntry.Status.PENDING).first()


def context_for(world: World, *, volunteer, outsider, expert, second_expert, admin_user) -> Context:
    """The world with labelling queues for the experts and the admin, and a queued job to cancel."""
    users = {"anonymous": None, "volunteer": volunteer, "outsider": outsider, "expert": expert,
             "second_expert": second_expert, "admin": admin_user}
    policy(world.dataset, batch_size=3, double_label_share=0)
    queue_build(dataset=world.dataset, schema=world.schema, experts=[expert, second_expert, admin_user],
                strategy="random")
    job = queue_build_start(dataset=world.dataset, schema=world.broad, user=admin_user)
    return Context(world, users, job)


def client_for(user: User | None, **kwargs) -> Client:
    client = Client(**kwargs)
    if user is not None:
        client.force_login(user)
    return client


def as_json(body: dict | None) -> str:
    return json.dumps(body) if body is not None else ""


def send(client: Client, method: str, path: str, body: dict | None, **extra):
    response = client.generic(method, path, data=as_json(body), content_type="application/json", **extra)
    if getattr(response, "streaming", False):
        b"".join(response.streaming_content)  # a streamed export fails while it streams, not before
    return response


def csrf_client(user: User | None) -> tuple[Client, dict]:
    """A client (signed in as ``user`` unless None) that checks CSRF like a browser, with the CSRF cookie a page
    would have set, and the header a page's script sends with it (a form sends the same token as a field)."""
    client = client_for(user, enforce_csrf_checks=True)
    request = HttpRequest()
    masked = get_token(request)
    client.cookies[settings.CSRF_COOKIE_NAME] = request.META["CSRF_COOKIE"]
    return client, {"HTTP_X_CSRFTOKEN": masked}
