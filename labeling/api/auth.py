"""API tokens for scripts: POST a user name and password for the user's token (made on first request), DELETE to
revoke it. Send it as the header "Authorization: Token <key>". Failed attempts count towards the sign-in lockouts of
labeling/lockouts.py, the login page's too."""

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import Throttled, ValidationError
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response

from labeling.lockouts import locked_until, lockout_message, seconds_until


class BoundedTokenSerializer(AuthTokenSerializer):
    """A user name no longer than any user's, refused (400) before authentication: every attempt is stored by the
    lockouts (a 255-character column), and PostgreSQL refuses a longer value where SQLite silently keeps it."""

    username = serializers.CharField(label="Username", write_only=True,
                                     max_length=get_user_model()._meta.get_field("username").max_length)


class TokenView(ObtainAuthToken):
    """POST: the token of the user whose credentials are given (anyone may ask; wrong credentials are a 400, and
    429 once the user or the address is locked out). DELETE: revoke the signed-in user's token; the next POST makes
    a new one."""

    serializer_class = BoundedTokenSerializer

    def get_permissions(self):
        return [IsAuthenticated()] if self.request.method == "DELETE" else [AllowAny()]

    def post(self, request, *args, **kwargs):
        try:
            return super().post(request, *args, **kwargs)
        except ValidationError:
            # axes marks the request it was given, DRF's here, which its middleware never sees: answer the lock here.
            if getattr(request, "axes_locked_out", False):
                until = locked_until(request, getattr(request, "axes_credentials", None))
                raise Throttled(wait=seconds_until(until), detail=lockout_message(until)) from None
            raise

    @extend_schema(request=None, responses={204: None})
    def delete(self, request):
        Token.objects.filter(user=request.user).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
