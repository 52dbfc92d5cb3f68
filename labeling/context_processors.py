"""Values every page template reads."""

from labeling.services.labelling.labels import user_is_expert


def roles(request) -> dict:
    """``can_label``: the signed-in user is an expert or an admin (shows the Label menu and bulk controls)."""
    user = getattr(request, "user", None)
    return {"can_label": user_is_expert(user) if user is not None else False}
