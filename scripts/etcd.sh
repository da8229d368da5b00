#!/usr/bin/env bash
# A real etcd for tests: one etcd member from Debian's etcd-server on
# 127.0.0.1, all of its state and its log under one directory.
#
#   etcd.sh start DIR PORT   start it; clients reach it at http://127.0.0.1:PORT
#                            (the peer port is any free one). Prints
#                            "endpoint=http://127.0.0.1:PORT" once the v3 JSON
#                            gateway answers a range request (well under 1 s),
#                            and writes DIR/etcd.env (endpoint=...).
#   etcd.sh stop DIR         kill -9 it (the data is throwaway) and wait until
#                            it is gone. Leaves DIR in place.
#
# Missing packages (etcd-server) are installed by scripts/install-deps.sh etcd.
# --unsafe-no-fsync: a test's etcd need not survive a power loss, and an fsync
# per write on a machine shared by parallel tests makes every lease call slow.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: etcd.sh start DIR PORT | stop DIR" >&2; exit 2; }

# True while PID runs (a zombie, which an init that does not reap leaves
# behind, does not count).
running() {
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

if [ "$cmd" = stop ]; then
  pidfile="$dir/etcd.pid"
  [ -f "$pidfile" ] || exit 0
  pid=$(cat "$pidfile")
  if [ -n "$pid" ] && running "$pid"; then
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do running "$pid" || break; sleep 0.05; done
  fi
  rm -f "$pidfile"
  exit 0
fi
[ "$cmd" = start ] || { echo "etcd.sh: unknown command '$cmd'" >&2; exit 2; }
port=${3:-}
[ -n "$port" ] || { echo "usage: etcd.sh start DIR PORT" >&2; exit 2; }

etcd_bin=/usr/bin/etcd
if [ ! -x "$etcd_bin" ]; then
  "$here/install-deps.sh" etcd </dev/null
fi

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
peer_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
endpoint="http://127.0.0.1:$port"
peer="http://127.0.0.1:$peer_port"

# setsid: the member is not in the caller's process group (a test's Ctrl-C
# or ctest's timeout kill of the group still reaches it through `stop`).
setsid "$etcd_bin" --name test --data-dir "$dir/data" \
  --listen-client-urls "$endpoint" --advertise-client-urls "$endpoint" \
  --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
  --initial-cluster "test=$peer" --initial-cluster-state new \
  --unsafe-no-fsync --log-level warn \
  >"$dir/etcd.log" 2>&1 </dev/null &
echo $! >"$dir/etcd.pid"

for _ in $(seq 1 200); do
  if python3 - "$endpoint" <<'EOF' 2>/dev/null; then
import sys, urllib.request
req = urllib.request.Request(sys.argv[1] + "/v3/kv/range", data=b'{"key":"AA=="}',
                             headers={"Content-Type": "application/json"})
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
with opener.open(req, timeout=1) as r:
    sys.exit(0 if r.status == 200 else 1)
EOF
    echo "endpoint=$endpoint" >"$dir/etcd.env"
    echo "endpoint=$endpoint"
    exit 0
  fi
  if ! running "$(cat "$dir/etcd.pid")"; then
    echo "etcd.sh: etcd exited; its log ($dir/etcd.log):" >&2
    tail -n 30 "$dir/etcd.log" >&2
    exit 1
  fi
  sleep 0.05
done
echo "etcd.sh: etcd did not answer on $endpoint within 10 s; its log:" >&2
tail -n 30 "$dir/etcd.log" >&2
"$0" stop "$dir"
exit 1
