# vipanel's production image: one image for the web server (gunicorn), the Celery worker, beat
# and the one-shot migrate service of docker-compose.yml, which says how to run each of them.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    STATIC_ROOT=/app/staticfiles \
    VIPANEL_DATA_DIR=/app/data

# No openssh-client: vipanel talks SSH through paramiko. No compiler either: every pinned
# requirement installs from a wheel.
RUN groupadd --system --gid 10001 vipanel \
    && useradd --system --uid 10001 --gid vipanel --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin vipanel

WORKDIR /app
# Requirements first, so a code change does not reinstall them.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

COPY . .
# STATIC_ROOT is made first: settings pick WhiteNoise's hashed storage only when it exists, and
# collecting with the plain one leaves no manifest, so every page would fail at run time.
# Settings need keys to load; these throwaway ones live and die in /tmp/build within this step.
RUN mkdir -p "$STATIC_ROOT" \
    && VIPANEL_DATA_DIR=/tmp/build python manage.py collectstatic --noinput -v0 \
    && test -f "$STATIC_ROOT/staticfiles.json" \
    && rm -rf /tmp/build

# /app stays root's: the code cannot be changed at run time, and VIPANEL_DATA_DIR (/app/data)
# cannot be created, so a container started without SECRET_KEY(_FILE) and
# FIELD_ENCRYPTION_KEY(_FILE) fails at start instead of generating keys of its own (each
# container would get different ones, and the worker could not read what the web encrypted).
USER vipanel
EXPOSE 8000
# No control socket: it would be made under $HOME, which is read-only here.
CMD ["gunicorn", "vipanel.wsgi", "--bind=0.0.0.0:8000", "--workers=3", \
     "--worker-tmp-dir=/dev/shm", "--no-control-socket", "--access-logfile=-"]
