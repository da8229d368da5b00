#!/usr/bin/env bash
# A real S3 endpoint for tests: a single-node Ceph cluster (one monitor, one
# memstore OSD, the RADOS Gateway on 127.0.0.1) from Debian's packages, all of
# its state, sockets and logs under one directory.
#
#   ceph-s3.sh start DIR PORT   start it; radosgw listens on 127.0.0.1:PORT.
#                               Prints "endpoint=http://127.0.0.1:PORT" when a
#                               signed PUT answers 200 (about 2 s), and writes
#                               DIR/s3.env (endpoint, access key, secret).
#   ceph-s3.sh stop DIR         stop it, in waves: radosgw, then the OSD, then
#                               the monitor (radosgw hangs when the OSD is gone
#                               first). Leaves DIR in place.
#   ceph-s3.sh stop-rgw DIR     stop radosgw only (S3 down, its data kept: the
#                               fault tests' "stopped radosgw").
#   ceph-s3.sh start-rgw DIR    start radosgw again on its port; returns when a
#                               signed PUT answers 200.
#
# Credentials: BRANCHDB_TEST_S3_ACCESS_KEY / BRANCHDB_TEST_S3_SECRET_KEY, or the
# fixed test pair below. Missing packages (ceph-mon ceph-osd radosgw ceph-common)
# are installed by scripts/install-deps.sh s3. Memstore keeps data in RAM
# (bounded by memstore_device_bytes, 1 GiB): a test keeps well under that.
# The settings and their reasons: docs/object-storage.md ("The Ceph fixture").
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || {
  echo "usage: ceph-s3.sh start DIR PORT | stop DIR | stop-rgw DIR | start-rgw DIR" >&2
  exit 2
}

# True while any thread of PID runs (a zombie, which an init that does not
# reap leaves behind, does not count). Each thread counts: a killed process's
# main thread turns zombie first, while its other threads (radosgw has
# hundreds) still hold its files and sockets, its listening port among them.
running() {
  local states  # cat fails for a thread that exits while it reads: the others still count
  states=$( (cat "/proc/$1"/task/*/stat 2>/dev/null || true) | sed 's/^.*) //' | cut -c1)
  printf '%s\n' "$states" | grep -q '^[^ZX]'
}

# Kills the daemon whose pid file is DIR/run/NAME.pid (SIGKILL: the data is
# throwaway) and waits until it is gone: up to 30 s, as a process blocked in
# the kernel on a loaded machine dies only when its call returns (a radosgw
# started while the old one still holds the port would never answer).
stop_daemon() {
  local pidfile="$dir/run/$1.pid" pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if [ -n "$pid" ] && running "$pid"; then
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 1 600); do running "$pid" || break; sleep 0.05; done
    if running "$pid"; then
      echo "ceph-s3.sh: $1 (pid $pid) still runs 30 s after SIGKILL:" \
        "$(cat "/proc/$pid/stat" 2>/dev/null)" >&2
      return 1
    fi
  fi
  rm -f "$pidfile"
}

if [ "$cmd" = stop ]; then
  [ -d "$dir" ] || exit 0
  rc=0
  stop_daemon client.rgw.a || rc=1
  stop_daemon osd.0 || rc=1
  stop_daemon mon.a || rc=1
  exit $rc
fi
if [ "$cmd" = stop-rgw ]; then
  stop_daemon client.rgw.a
  exit 0
fi
# wait_ready PORT ACCESS_KEY SECRET_KEY [SECONDS]: true once a signed PUT
# (SigV4, CreateBucket of a probe bucket) answers 200, false after SECONDS
# (60).
wait_ready() {
  python3 - "$1" "$2" "$3" "${4:-60}" >>"$dir/setup.log" 2>&1 <<'EOF'
import datetime, hashlib, hmac, http.client, sys, time
port, ak, sk = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def sign(key, msg): return hmac.new(key, msg.encode(), hashlib.sha256).digest()
deadline = time.time() + float(sys.argv[4])
while True:
    now = datetime.datetime.utcnow()
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    host = f"127.0.0.1:{port}"
    headers = {"host": host, "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "x-amz-date": amz_date}
    names = ";".join(sorted(headers))
    canonical = "\n".join(["PUT", "/fixture-ready", "",
                           "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)), names,
                           "UNSIGNED-PAYLOAD"])
    scope = f"{day}/us-east-1/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    k = sign(sign(sign(sign(("AWS4" + sk).encode(), day), "us-east-1"), "s3"), "aws4_request")
    sig = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={ak}/{scope}, "
                                f"SignedHeaders={names}, Signature={sig}")
    headers["Content-Length"] = "0"
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("PUT", "/fixture-ready", headers=headers)
        r = c.getresponse()
        body = r.read()
        if r.status == 200:
            sys.exit(0)
        print("probe:", r.status, body[:200])
    except OSError as e:
        print("probe:", e)
    if time.time() > deadline:
        sys.exit(1)
    time.sleep(0.05)
EOF
}

# Without these the OSD keeps about 900 MiB after deletes.
export MALLOC_ARENA_MAX=2 MALLOC_TRIM_THRESHOLD_=1048576 MALLOC_MMAP_THRESHOLD_=131072

# start-rgw tries three times, 40 s each: a radosgw that exited (it does
# when its port is still taken: "failed to bind address") or hung in its start
# is killed and started again; each failed attempt prints its log's tail.
if [ "$cmd" = start-rgw ]; then
  dir=$(cd "$dir" && pwd)
  [ -f "$dir/s3.env" ] || { echo "ceph-s3.sh: $dir/s3.env missing (not started?)" >&2; exit 1; }
  endpoint=$(sed -n 's/^endpoint=//p' "$dir/s3.env")
  for attempt in 1 2 3; do
    if CEPH_CONF="$dir/ceph.conf" radosgw -n client.rgw.a >>"$dir/setup.log" 2>&1 &&
      wait_ready "${endpoint##*:}" "$(sed -n 's/^access_key_id=//p' "$dir/s3.env")" \
        "$(sed -n 's/^secret_access_key=//p' "$dir/s3.env")" 40; then
      exit 0
    fi
    echo "ceph-s3.sh: attempt $attempt: radosgw did not answer a signed PUT with 200" >&2
    for f in "$dir/log/client.rgw.a.log" "$dir/setup.log"; do
      [ -f "$f" ] && { echo "--- tail of $f" >&2; tail -n 15 "$f" >&2; }
    done
    stop_daemon client.rgw.a || true
    sleep 2
  done
  exit 1
fi

[ "$cmd" = start ] || { echo "ceph-s3.sh: unknown command '$cmd'" >&2; exit 2; }
port=${3:-}
[ -n "$port" ] || { echo "usage: ceph-s3.sh start DIR PORT" >&2; exit 2; }

if ! command -v radosgw >/dev/null || ! command -v ceph-osd >/dev/null ||
   ! command -v ceph-mon >/dev/null || ! command -v radosgw-admin >/dev/null; then
  "$here/install-deps.sh" s3 </dev/null || {
    echo "ceph-s3.sh: the Ceph packages (ceph-mon ceph-osd radosgw ceph-common) are missing" \
      "and scripts/install-deps.sh s3 could not install them: run it as root, then retry" >&2
    exit 1
  }
fi

access_key=${BRANCHDB_TEST_S3_ACCESS_KEY:-branchdbtestaccesskey}
secret_key=${BRANCHDB_TEST_S3_SECRET_KEY:-branchdb-test-secret-key-0123456789}

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
mkdir -p "$dir/run" "$dir/log" "$dir/mon" "$dir/osd/ceph-0" "$dir/rgw"
# A free port for the monitor (the OSD and radosgw's own messenger ports come
# from Ceph's range, which skips ports in use).
mon_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
fsid=$(cat /proc/sys/kernel/random/uuid)
osd_uuid=$(cat /proc/sys/kernel/random/uuid)
conf="$dir/ceph.conf"

cat >"$conf" <<EOF
[global]
fsid = $fsid
run_dir = $dir/run
log_file = $dir/log/\$name.log
admin_socket = $dir/run/\$name.asok
pid_file = $dir/run/\$name.pid
mon_host = v2:127.0.0.1:$mon_port
public_addr = 127.0.0.1
ms_bind_msgr1 = false
ms_bind_msgr2 = true
# No cephx: every messenger mode must then be crc (radosgw defaults to secure
# and hangs 300 s fetching its config); a mount failure shows in 30 s.
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
ms_mon_client_mode = crc
ms_client_mode = crc
ms_service_mode = crc
ms_cluster_mode = crc
ms_mon_service_mode = crc
ms_mon_cluster_mode = crc
client_mount_timeout = 30
# One OSD: pools of size 1, few placement groups, no autoscaler.
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
mon_max_pg_per_osd = 1000
osd_crush_chooseleaf_type = 0
# Each of radosgw's pool creations waits for a monitor round: 1.7 s, not 16 s.
paxos_propose_interval = 0.05
paxos_min_wait = 0.01
mon_data = $dir/mon/\$cluster-\$id
osd_data = $dir/osd/\$cluster-\$id
osd_objectstore = memstore
memstore_device_bytes = 1073741824
rgw_gc_obj_min_wait = 60

[client.rgw.a]
rgw_frontends = beast endpoint=127.0.0.1:$port tcp_nodelay=1
rgw_data = $dir/rgw
EOF
export CEPH_CONF="$conf"

fail() {
  echo "ceph-s3.sh: $*" >&2
  for f in "$dir"/log/*.log "$dir"/setup.log; do
    [ -f "$f" ] && { echo "--- tail of $f" >&2; tail -n 20 "$f" >&2; }
  done
  "$0" stop "$dir" || true
  exit 1
}

log="$dir/setup.log"
monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$dir/monmap" >>"$log" 2>&1 ||
  fail "monmaptool failed"
ceph-mon --mkfs -i a --monmap "$dir/monmap" >>"$log" 2>&1 || fail "ceph-mon --mkfs failed"
ceph-mon -i a >>"$log" 2>&1 || fail "ceph-mon did not start"
osd_id=$(timeout 60 ceph osd new "$osd_uuid" 2>>"$log") || fail "ceph osd new failed"
[ "$osd_id" = 0 ] || fail "ceph osd new gave id '$osd_id', expected 0"
ceph-osd -i 0 --mkfs --osd-uuid "$osd_uuid" >>"$log" 2>&1 || fail "ceph-osd --mkfs failed"
ceph-osd -i 0 >>"$log" 2>&1 || fail "ceph-osd did not start"
timeout 60 radosgw-admin user create --uid=branchdb-test --display-name=branchdb-test \
  --access-key="$access_key" --secret-key="$secret_key" >>"$log" 2>&1 ||
  fail "radosgw-admin user create failed"
radosgw -n client.rgw.a >>"$log" 2>&1 || fail "radosgw did not start"

wait_ready "$port" "$access_key" "$secret_key" ||
  fail "radosgw did not answer a signed PUT with 200 within 60 s"

cat >"$dir/s3.env" <<EOF
endpoint=http://127.0.0.1:$port
access_key_id=$access_key
secret_access_key=$secret_key
region=us-east-1
EOF
echo "endpoint=http://127.0.0.1:$port"
