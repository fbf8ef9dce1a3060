"""Paging of every list: `?limit=` (1..MAX_LIMIT, default DEFAULT_LIMIT) and `?offset=`.

The body stays a plain list; when more items follow, a `Link: <...>; rel="next"` header
(RFC 8288) gives the next page. One query, whatever the page size. An offset beyond any
possible row (up to MAX_OFFSET) is an empty page; a larger one is a 400, never a 500 (the
database cannot take an OFFSET past a 64-bit integer).
"""

from rest_framework import pagination
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# PostgreSQL's OFFSET is a bigint; SQLite's an int64. Far beyond any table of ours.
MAX_OFFSET = 2**62


class LimitOffset(pagination.BasePagination):
    limit_param, offset_param = "limit", "offset"

    def _int(self, request, name, default, lo, hi):
        raw = request.query_params.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            value = None
        if value is None or not lo <= value <= hi:
            raise ValidationError({name: [f"Use a whole number from {lo} to {hi}."]})
        return value

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        self.limit = self._int(request, self.limit_param, DEFAULT_LIMIT, 1, MAX_LIMIT)
        self.offset = self._int(request, self.offset_param, 0, 0, MAX_OFFSET)
        rows = list(queryset[self.offset : self.offset + self.limit + 1])
        self.more = len(rows) > self.limit
        return rows[: self.limit]

    def get_paginated_response(self, data):
        response = Response(data)
        if self.more:
            query = self.request.query_params.copy()
            query[self.offset_param] = self.offset + self.limit
            query[self.limit_param] = self.limit
            response["Link"] = f'<{self.request.path}?{query.urlencode()}>; rel="next"'
        return response

    def get_paginated_response_schema(self, schema):
        return schema

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.limit_param,
                "in": "query",
                "required": False,
                "allowEmptyValue": True,  # empty: the default, as ever
                "description": "At most this many items. When more follow, a Link header "
                'with rel="next" gives them.',
                "schema": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_LIMIT,
                    "default": DEFAULT_LIMIT,
                },
            },
            {
                "name": self.offset_param,
                "in": "query",
                "required": False,
                "allowEmptyValue": True,
                "description": "Skip this many items (past the end: an empty page).",
                "schema": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0},
            },
        ]
