"""The JSON API under /api/v1/, on Django REST Framework; the schema comes from drf-spectacular.

- auth.py: TokenAuthentication (`Authorization: Token KEY`, sha256 lookup, failure rate limit)
- permissions.py: RoleByMethod (each view's `roles` per HTTP method)
- pagination.py: LimitOffset (plain list body, `Link: rel="next"`)
- serializers.py: JSON shapes; ModelCleanSerializer (strict types, then the model's full_clean)
- actions.py: what each mutation does (one call per perform_* / action, service-shaped)
- errors.py: JSON errors (DRF exception handler; handler404/500 for /api/)
- openapi.py: token scheme, roles and error responses in the generated schema
- views.py, urls.py: the endpoints
"""
