"""API tokens for scripts: POST a user name and password for the user's token (made on first request), DELETE to
revoke it. Send it as the header "Authorization: Token <key>"."""

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response


class TokenView(ObtainAuthToken):
    """POST: the token of the user whose credentials are given (anyone may ask; wrong credentials are a 400).
    DELETE: revoke the signed-in user's token; the next POST makes a new one."""

    def get_permissions(self):
        return [IsAuthenticated()] if self.request.method == "DELETE" else [AllowAny()]

    @extend_schema(request=None, responses={204: None})
    def delete(self, request):
        Token.objects.filter(user=request.user).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
