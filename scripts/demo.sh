#!/usr/bin/env bash
# `make demo`: vipanel and a three-node keepalived lab on this machine, with a cluster "demo"
# already pushed. Prints the URL and a login; Ctrl-C stops everything and removes the lab and
# the demo's data directory. Needs root (the lab is made of network namespaces).
#
#   scripts/demo.sh                 run the demo (what `make demo` does)
#   scripts/demo.sh failover        stop keepalived on the node holding the VIP
#   scripts/demo.sh recover         start keepalived again where it was stopped
#   scripts/demo.sh manage ARGS...  manage.py with the running demo's settings, e.g. status demo
#
# The demo never touches the panel of `make run`: its own data directory (SQLite, keys, logs),
# its own port, its own Redis (a private one on DEMO_REDIS_PORT, so the worker of `make run`,
# listening on the usual Redis, never takes the demo's tasks), and lab prefix "vpd", which no
# test lab uses.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PY="$VENV/bin/python"
PREFIX="${DEMO_PREFIX:-vpd}"
PORT="${DEMO_PORT:-8001}"
REDIS_PORT="${DEMO_REDIS_PORT:-6391}"
DATA="${DEMO_DATA_DIR:-$PWD/data/demo}"
CLUSTER=demo
case "$DATA" in
    /*/*) ;;
    *) echo "DEMO_DATA_DIR must be an absolute path below a directory, not $DATA" >&2; exit 2 ;;
esac

# Only the demo's own settings: nothing of the caller's environment may point it at a real
# database, real keys, or the test settings.
demo_env() {
    unset DATABASE_URL VIPANEL_SQLITE_PATH SECRET_KEY SECRET_KEY_FILE FIELD_ENCRYPTION_KEY \
        FIELD_ENCRYPTION_KEY_FILE DEBUG VIPANEL_HTTPS VIPANEL_BEHIND_PROXY ALLOWED_HOSTS \
        CSRF_TRUSTED_ORIGINS CELERY_TASK_ALWAYS_EAGER VIPANEL_NOTIFY_URL REDIS_URL
    export DJANGO_SETTINGS_MODULE=vipanel.settings
    export VIPANEL_DATA_DIR="$DATA"
    # Not ./staticfiles: a stale collectstatic there would be served instead of the app's files.
    export STATIC_ROOT="$DATA/static"
}

running_demo_env() {
    if [ ! -f "$DATA/demo.env" ]; then
        echo "No demo is running (no $DATA/demo.env): start one with make demo." >&2
        exit 1
    fi
    demo_env
    # shellcheck source=/dev/null
    . "$DATA/demo.env"
}

case "${1:-run}" in
    run) ;;
    failover|recover)
        running_demo_env
        exec "$PY" scripts/demo_setup.py "$1" "$PREFIX" ;;
    manage)
        shift
        running_demo_env
        exec "$PY" manage.py "$@" ;;
    *)
        sed -n '2,9p' "$0" >&2
        exit 2 ;;
esac

if [ "$(id -u)" != 0 ]; then
    echo "The demo needs root: its lab is made of network namespaces." >&2
    exit 1
fi
# One demo per lab prefix: a second one would tear down the first one's lab.
mkdir -p /run/lock
LOCK="/run/lock/vipanel-demo-$PREFIX"
exec 9>>"$LOCK"
if ! flock -n 9; then
    echo "A demo with lab prefix $PREFIX is running already (it holds $LOCK)." >&2
    exit 1
fi
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    echo "Port $PORT is taken on 127.0.0.1: choose another with DEMO_PORT=..." >&2
    exit 1
fi

demo_env
pids=()
interrupted=0

stop() {
    trap - INT TERM EXIT
    set +e
    echo
    if [ "$interrupted" = 0 ] && [ -d "$DATA" ]; then
        echo "The demo stopped on an error; the last lines of its logs:"
        for log in "$DATA"/*.log; do
            [ -s "$log" ] && { echo "== $log"; tail -n 15 "$log"; }
        done
    fi
    echo "Stopping the demo..."
    # Each process leads a process group of its own (setsid): the group takes the Celery pool
    # and gunicorn's workers along. TERM first, KILL whatever is left after 10 s.
    for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null; done
    for _ in $(seq 100); do
        alive=0
        for pid in "${pids[@]}"; do
            [ -e "/proc/$pid" ] && [ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" != Z ] && alive=1
        done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null; done
    wait 2>/dev/null
    "$PY" -m tests.lab down --prefix "$PREFIX"
    if [ -n "${DEMO_KEEP_DATA:-}" ]; then
        echo "Kept $DATA (DEMO_KEEP_DATA)."
    else
        rm -rf "$DATA"
    fi
    rm -f "$LOCK"
    echo "Demo stopped: lab $PREFIX removed, its processes ended, $DATA deleted."
}
trap 'interrupted=1; exit 130' INT TERM
trap stop EXIT

# start NAME COMMAND...: in a session of its own, so Ctrl-C reaches only this script, which then
# stops everything in order; without the lock's descriptor, which is this script's alone.
start() {
    local name="$1"
    shift
    setsid "$@" </dev/null >>"$DATA/$name.log" 2>&1 9<&- &
    pids+=($!)
}

# A crashed demo's data is the demo's own: start afresh.
rm -rf "$DATA"
mkdir -p "$DATA"

echo "Starting a three-node keepalived lab ($PREFIX-n1..3)..."
"$PY" -m tests.lab up --nodes 3 --prefix "$PREFIX" --json >"$DATA/lab.json"
BRIDGE=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["bridge_address"])' \
    "$DATA/lab.json")

# The nodes report state changes to the panel at the bridge address, so the web server listens
# there as well as on 127.0.0.1 (not 0.0.0.0: the demo's panel stays off the machine's real
# networks). Settings add the notify URL's host to ALLOWED_HOSTS.
REDIS_URL="${DEMO_REDIS_URL:-redis://127.0.0.1:$REDIS_PORT/0}"
cat >"$DATA/demo.env" <<EOF
export REDIS_URL='$REDIS_URL'
export VIPANEL_NOTIFY_URL='http://$BRIDGE:$PORT'
EOF
# shellcheck source=/dev/null
. "$DATA/demo.env"

redis_up() {
    "$PY" -c 'import os, redis; redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=2).ping()' \
        2>/dev/null
}
if ! redis_up; then
    echo "Starting a private Redis on 127.0.0.1:$REDIS_PORT..."
    start redis redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
        --daemonize no
    for _ in $(seq 50); do redis_up && break; sleep 0.1; done
    redis_up || { echo "The private Redis did not start." >&2; exit 1; }
fi

"$PY" manage.py migrate --noinput -v0
PASSWORD=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(12))')
DEMO_PASSWORD="$PASSWORD" "$PY" scripts/demo_setup.py setup "$PREFIX"

# Sweeps on a worker of their own, pushes and drills on the other (CELERY_TASK_ROUTES).
start sweeper "$PY" -m celery -A vipanel worker --loglevel=INFO --concurrency=1 -n "demo-sweeper@%h" \
    --queues=sweeps,alerts
start worker "$PY" -m celery -A vipanel worker --loglevel=INFO --concurrency=2 -n "demo@%h" \
    --queues=pushes,drills,celery
# gunicorn, as in production, because it can listen on two addresses; no control socket, which
# would be left in ~/.gunicorn.
start web "$PY" -m gunicorn vipanel.wsgi --bind "127.0.0.1:$PORT" --bind "$BRIDGE:$PORT" \
    --workers 2 --threads 4 --no-control-socket --access-logfile - --error-logfile -
for _ in $(seq 100); do
    curl -fs -o /dev/null "http://127.0.0.1:$PORT/login/" && break
    sleep 0.2
done
curl -fs -o /dev/null "http://127.0.0.1:$PORT/login/" || { echo "The web server did not start." >&2; exit 1; }

echo "Pushing the cluster's configs through the worker, one node at a time..."
"$PY" manage.py push "$CLUSTER" --wait --timeout 300
# Sweeps from now on: before the push no keepalived ran, and the history would open with an alarm.
start beat "$PY" -m celery -A vipanel beat --loglevel=INFO --schedule="$DATA/celerybeat-schedule"
"$PY" manage.py status "$CLUSTER"

cat <<EOF

vipanel demo: http://127.0.0.1:$PORT/    login: demo / $PASSWORD
  (nodes report failovers to http://$BRIDGE:$PORT/; logs in $DATA)
Make a failover, in another shell:   scripts/demo.sh failover   (then: scripts/demo.sh recover)
Ask the nodes who holds the VIP:     scripts/demo.sh manage status $CLUSTER
Ctrl-C stops everything and removes the lab and $DATA.
EOF

# Until Ctrl-C, or until one of the demo's processes dies.
set +e
wait -n "${pids[@]}"
echo "A demo process ended unexpectedly."
exit 1
