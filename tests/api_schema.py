"""The generated OpenAPI document, and the API's routes read from it (for the API tests)."""

import functools
import re

from drf_spectacular.generators import SchemaGenerator

METHODS = ("get", "post", "put", "patch", "delete")


@functools.cache
def generated():
    return SchemaGenerator().get_schema(request=None, public=True)


def operations():
    """[(METHOD, /api/v1/path/{param}/, role)] for every operation in the schema."""
    return [
        (method.upper(), path, operation.get("x-vipanel-role"))
        for path, item in generated()["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def path_for(path, ids):
    return re.sub(r"{(\w+)}", lambda m: str(ids[m.group(1)]), path)
