"""Who may call which endpoint. Anonymous callers get nothing; volunteers may only classify; experts read
everything and write their own labels; admins (staff) may do everything. Every view names its rule: the default
(settings.REST_FRAMEWORK) is CanRead, so an endpoint added without thought is at least closed to volunteers."""

from rest_framework.permissions import SAFE_METHODS, BasePermission

from labeling.services.labelling.labels import user_is_expert


def _is_admin(user) -> bool:
    return bool(user and user.is_authenticated and (user.is_staff or user.is_superuser))


class IsExpert(BasePermission):
    """Experts (group 'experts') and admins; volunteers and other signed-in users get 403."""

    message = "Only experts and admins may do this."

    def has_permission(self, request, view) -> bool:
        return user_is_expert(request.user)


class CanRead(BasePermission):
    """Reading (GET, HEAD, OPTIONS) for experts and admins; no writing at all."""

    message = "Only experts and admins may read this; nobody may change it here."

    def has_permission(self, request, view) -> bool:
        return request.method in SAFE_METHODS and user_is_expert(request.user)


class IsAdmin(BasePermission):
    message = "Only admins may do this."

    def has_permission(self, request, view) -> bool:
        return _is_admin(request.user)


class IsSignedIn(BasePermission):
    """Any signed-in person: volunteers, experts, admins."""

    message = "Sign in first."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated)


class CanClassify(IsSignedIn):
    """Any signed-in person may send a volunteer classification (volunteers, experts, admins)."""

    message = "Sign in to classify galaxies."


class OwnLabelOrAdmin(BasePermission):
    """Experts read every label and change or withdraw their own; admins may also withdraw anyone's."""

    message = "Experts may only change or withdraw their own labels."

    def has_permission(self, request, view) -> bool:
        return user_is_expert(request.user)

    def has_object_permission(self, request, view, obj) -> bool:
        if request.method in SAFE_METHODS or obj.expert_id == request.user.pk:
            return True
        return request.method == "DELETE" and _is_admin(request.user)
