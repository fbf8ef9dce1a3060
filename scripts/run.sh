#!/usr/bin/env bash
# Serves the panel on http://127.0.0.1:8000 for one machine: migrates, makes the first admin
# (printing its password once), runs a Celery worker and beat (and a private Redis when none
# answers at REDIS_URL), and stops everything it started on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PY="$VENV/bin/python"
LISTEN="${VIPANEL_LISTEN:-127.0.0.1:8000}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
mkdir -p data
pids=()

stop() {
    trap - INT TERM EXIT
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap stop INT TERM EXIT

if ! "$PY" -c 'import os, redis; redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=2).ping()' 2>/dev/null; then
    port="${VIPANEL_PRIVATE_REDIS_PORT:-6390}"
    echo "No Redis answers at $REDIS_URL: starting a private one on 127.0.0.1:$port"
    redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no --daemonize no \
        --logfile "$PWD/data/redis.log" &
    pids+=($!)
    export REDIS_URL="redis://127.0.0.1:$port/0"
    for _ in $(seq 50); do
        "$PY" -c 'import os, redis; redis.Redis.from_url(os.environ["REDIS_URL"]).ping()' 2>/dev/null && break
        sleep 0.1
    done
fi

"$PY" manage.py migrate --noinput -v0
"$PY" manage.py create_admin
# Two workers: monitoring (sweeps, alert deliveries) apart from pushes and drills, so a long
# push never delays a sweep or an alert (queues: CELERY_TASK_ROUTES in vipanel/settings.py).
"$PY" -m celery -A vipanel worker --loglevel=INFO --concurrency=2 -n "sweeper@%h" \
    --queues=sweeps,alerts --logfile="$PWD/data/sweeper.log" &
pids+=($!)
"$PY" -m celery -A vipanel worker --loglevel=INFO --concurrency=2 -n "worker@%h" \
    --queues=pushes,drills,celery --logfile="$PWD/data/worker.log" &
pids+=($!)
"$PY" -m celery -A vipanel beat --loglevel=INFO --schedule="$PWD/data/celerybeat-schedule" \
    --logfile="$PWD/data/beat.log" &
pids+=($!)
echo "vipanel: http://$LISTEN/  (worker, sweeper and beat logs in data/; Ctrl-C stops everything)"
"$PY" manage.py runserver --noreload "$LISTEN" &
pids+=($!)
wait -n "${pids[@]}"
