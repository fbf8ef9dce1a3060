#!/usr/bin/env bash
# Serves the panel on http://127.0.0.1:8000 for one machine: migrates, makes the first admin
# (printing its password once), and stops everything it started on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${VENV:-.venv}/bin/python"

"$PY" manage.py migrate --noinput -v0
"$PY" manage.py create_admin
exec "$PY" manage.py runserver "${VIPANEL_LISTEN:-127.0.0.1:8000}"
