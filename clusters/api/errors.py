"""Every error under /api/ as JSON: the DRF exception handler and Django's 404/500 handlers.

Bodies: `{"detail": "..."}` (401, 403, 404, 405, 409, 429, 500) or `{field: [messages]}`
(400, with "__all__" for the object as a whole), as the API has always answered.
"""

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.views import exception_handler as drf_exception_handler

from clusters.services.errors import Refused, Unreachable

API_PREFIX = "/api/"
NO_TOKEN = "Send a valid API token: 'Authorization: Token KEY' (create_api_token)."


class Conflict(exceptions.APIException):
    """409: the request is fine, the state of things does not allow it now."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "Not possible in the current state."

    def __init__(self, detail, **extra):
        super().__init__(detail)
        self.extra = extra


def field_errors(errors):
    """{field: [messages]} from a Django ValidationError, Refused.errors or a dict."""
    if isinstance(errors, DjangoValidationError):
        if hasattr(errors, "error_dict"):
            return errors.message_dict
        return {"__all__": errors.messages}
    return {k: [v] if isinstance(v, str) else [str(m) for m in v] for k, v in errors.items()}


def refused(e: Refused):
    """A push that cannot start: 409 while another one is active or a node it must change is
    unreachable, else 400 by field."""
    errors = field_errors(e.errors)
    if isinstance(e, Unreachable):
        # A conflict with the nodes' state; the body names them, so a script can skip them.
        return Conflict("; ".join(m for ms in errors.values() for m in ms), unreachable=e.nodes)
    if e.active is not None:
        return Conflict(
            "; ".join(m for ms in errors.values() for m in ms),
            active={"id": e.active.pk, "state": e.active.state},
            **errors,
        )
    return exceptions.ValidationError(errors)


def exception_handler(exc, context):
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or "Permission denied.")
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(field_errors(exc))
    elif isinstance(exc, Refused):
        exc = refused(exc)
    elif isinstance(exc, exceptions.ParseError):
        exc = exceptions.ValidationError({"__all__": [f"The body is not valid JSON: {exc.detail}"]})
    elif isinstance(exc, exceptions.NotAuthenticated):
        exc = exceptions.NotAuthenticated(NO_TOKEN)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a bug: Django's handler500 below answers it (as JSON under /api/)
    if isinstance(exc, exceptions.ValidationError) and not isinstance(response.data, dict):
        response.data = {"__all__": list(response.data)}
    if isinstance(exc, Conflict):
        response.data = {"detail": str(exc.detail), **exc.extra}
    if response.status_code == 401:
        response["WWW-Authenticate"] = context["view"].get_authenticate_header(context["request"])
    return response


def _is_api(request):
    return request.path.startswith(API_PREFIX)


def not_found(request, exception=None):
    """handler404: JSON under /api/ (a URL no route matches), the usual page elsewhere."""
    if _is_api(request):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    """handler500: JSON under /api/, the usual page elsewhere."""
    if _is_api(request):
        return JsonResponse({"detail": "Internal server error."}, status=500)
    return defaults.server_error(request)


def bad_request(request, exception=None):
    if _is_api(request):
        return JsonResponse({"detail": "Bad request."}, status=400)
    return defaults.bad_request(request, exception)


def permission_denied(request, exception=None):
    if _is_api(request):
        return JsonResponse({"detail": str(exception or "") or "Permission denied."}, status=403)
    return defaults.permission_denied(request, exception)
