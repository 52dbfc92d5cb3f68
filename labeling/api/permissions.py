"""Who may call which endpoint."""

from rest_framework.permissions import BasePermission

from labeling.services.labels import user_is_expert


class IsExpert(BasePermission):
    """Experts (group 'experts') and admins; volunteers and other signed-in users get 403."""

    message = "Only experts and admins may do this."

    def has_permission(self, request, view) -> bool:
        return user_is_expert(request.user)


class IsAdmin(BasePermission):
    message = "Only admins may do this."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_staff)
