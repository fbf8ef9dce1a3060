"""The API's plumbing: one view per URL dispatching on the method, token auth, roles, JSON errors.

Handlers are plain functions marked with the role they need (`@needs(OPERATOR)`); `route()`
joins them into one view that answers 405 for other methods, 401 without a valid token, 403
without the role, and turns Http404, PermissionDenied and the exceptions below into JSON.
"""

import json

from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from clusters import roles
from clusters.api import auth

PUBLIC = "public"
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


class Invalid(Exception):
    """400 with {field: [messages]}."""

    def __init__(self, errors):
        super().__init__(errors)
        self.errors = errors


class Conflict(Exception):
    """409: the request is fine, the state of things does not allow it now."""

    def __init__(self, detail, **extra):
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


def needs(role):
    """Mark a handler with the role it needs (roles.VIEWER/OPERATOR/ADMIN, or PUBLIC)."""

    def mark(handler):
        handler.role = role
        return handler

    return mark


def error(status, detail, **extra):
    return JsonResponse({"detail": detail, **extra}, status=status)


def route(**handlers):
    """One view for one URL: handlers by HTTP method, each marked with @needs."""
    allowed = ", ".join(sorted(handlers))

    # No session and no cookies: the token is the only credential, so CSRF cannot apply and the
    # login redirect must not either.
    @csrf_exempt
    @login_not_required
    def view(request, **kwargs):
        handler = handlers.get(request.method)
        if handler is None:
            response = error(405, f"Method {request.method} not allowed; use {allowed}.")
            response["Allow"] = allowed
            return response
        if handler.role != PUBLIC:
            user = auth.authenticate(request)
            if user is None:
                response = error(
                    401, "Send a valid API token: 'Authorization: Token KEY' (create_api_token)."
                )
                response["WWW-Authenticate"] = 'Token realm="vipanel"'
                return response
            request.user = user
            if not roles.has_role(user, handler.role):
                return error(403, f"This needs the {handler.role} role.")
        try:
            return handler(request, **kwargs)
        except Invalid as e:
            return JsonResponse(e.errors, status=400)
        except Conflict as e:
            return error(409, e.detail, **e.extra)
        except Http404:
            return error(404, "Not found.")
        except PermissionDenied as e:
            return error(403, str(e) or "Permission denied.")

    view.api_methods = sorted(handlers)
    view.api_handlers = handlers
    return view


def read_json(request):
    """The request body as JSON (an empty body is {}), or Invalid."""
    if not request.body:
        return {}
    try:
        return json.loads(request.body)
    except (ValueError, UnicodeDecodeError) as e:
        raise Invalid({"__all__": [f"The body is not valid JSON: {e}."]}) from None


def read_empty(request):
    """For actions that take no fields: an empty body or {}."""
    data = read_json(request)
    if data == {}:
        return
    if not isinstance(data, dict):
        raise Invalid({"__all__": ["Send an empty body or {}."]})
    raise Invalid({name: ["Unknown field; this action takes none."] for name in data})


def int_param(request, name, default, lo, hi=None):
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < lo or (hi is not None and value > hi):
        upper = f" to {hi}" if hi is not None else " or more"
        raise Invalid({name: [f"Use a whole number from {lo}{upper}."]})
    return value


def paginated(request, queryset, serialize):
    """A JSON list of at most `limit` items from `offset`, in the queryset's order.

    The body stays a plain list; when more items follow, a `Link: <...>; rel="next"` header
    (RFC 8288) gives the next page. One query, whatever the page size.
    """
    limit = int_param(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = int_param(request, "offset", 0, 0)
    rows = list(queryset[offset : offset + limit + 1])
    response = JsonResponse([serialize(row) for row in rows[:limit]], safe=False)
    if len(rows) > limit:
        query = request.GET.copy()
        query["offset"], query["limit"] = offset + limit, limit
        response["Link"] = f'<{request.path}?{query.urlencode()}>; rel="next"'
    return response
