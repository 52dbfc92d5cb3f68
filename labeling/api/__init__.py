"""The JSON API (Django REST framework): serializers check input, views call one service or selector."""
