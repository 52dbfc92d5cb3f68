"""Volunteers on the classify pages through Django's test client: each a browser of its own (cookies, session, CSRF
token) from an address of its own, and a dataset of real Galaxy10 images open to them."""

from types import SimpleNamespace

from django.test import Client

from labeling.models import ClassifyPolicy
from labeling.services.votes.classify import subjects_ensure
from labeling.services.votes.trees import tree_get_or_load_shipped
from tests.labeling.ml_helpers import galaxy10_subset

# A moment 10 s into a minute and into an hour: the rate limits' windows (fixed minutes and hours) never roll over in
# the middle of a test, which would start their counts again.
RATE_CLOCK = 3610.0


def freeze_rate_clock(monkeypatch) -> None:
    """Stop the clock labeling.ratelimit counts windows by (the live server's thread included) at RATE_CLOCK."""
    monkeypatch.setattr("labeling.ratelimit.time", SimpleNamespace(time=lambda: RATE_CLOCK))


ROUND = {"smooth-or-featured": "smooth", "how-rounded": "round", "merging": "none"}
ARTIFACT = {"smooth-or-featured": "artifact"}


def open_to_volunteers(folder, *, per_class: int = 2) -> ClassifyPolicy:
    """Real Galaxy10 galaxies (10 classes x ``per_class``) open under the GZ DECaLS tree; nothing retires early and
    offers go to the least-classified galaxies."""
    dataset = galaxy10_subset(folder, per_class=per_class)
    policy = ClassifyPolicy.objects.create(dataset=dataset, tree=tree_get_or_load_shipped(name="gz_decals"),
                                           retire_after=20, useful_share=0.0)
    subjects_ensure(policy=policy)
    return policy


class Browser:
    """One visitor's browser on a dataset's classify page, as classify.js calls it: the page first (a session and the
    CSRF cookie), then the next galaxy and the answers, every POST with the CSRF token."""

    def __init__(self, policy: ClassifyPolicy, *, address: str = "198.51.100.1", user=None, **headers):
        self.client = Client(enforce_csrf_checks=True, REMOTE_ADDR=address, **headers)
        if user is not None:
            self.client.force_login(user)
        self.base = f"/classify/{policy.dataset.slug}/"
        assert self.client.get(self.base).status_code == 200

    @property
    def session(self) -> str:
        return self.client.cookies["sessionid"].value

    def next(self, exclude: list[int] = ()):
        return self.client.get(self.base + "next/", {"exclude": ",".join(map(str, exclude))})

    def offered(self, exclude: list[int] = ()) -> int | None:
        """The galaxy the page is offered next (None when none is left)."""
        response = self.next(exclude)
        assert response.status_code == 200, response.content
        galaxy = response.json()["galaxy"]
        return galaxy and galaxy["id"]

    def submit(self, galaxy: int, answers: dict = ROUND):
        return self.client.post(self.base + "submit/", {"galaxy": galaxy, "answers": answers},
                                content_type="application/json",
                                HTTP_X_CSRFTOKEN=self.client.cookies["csrftoken"].value)
