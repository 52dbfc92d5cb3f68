"""Page-number pagination for every list: ?page=N&page_size=M (at most 1000), with count, next and previous."""

from rest_framework.pagination import PageNumberPagination


class Pages(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 1000
