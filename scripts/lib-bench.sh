# Helpers shared by the scripts/bench-*.sh benchmarks; sourced, not run.
#
# Every process a bench starts goes into `pids` and is stopped when the bench exits,
# however it exits.

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

# Installs a Debian package when its command is missing: need COMMAND PACKAGE.
need() {
    command -v "$1" >/dev/null && return 0
    echo "Installing $2 (Debian package)..." >&2
    if [ "$(id -u)" = 0 ]; then
        apt-get install -y -qq "$2" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }
    else
        sudo apt-get install -y -qq "$2" >/dev/null
    fi
}

# A TCP port nothing listens on now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits up to 10 s for something to listen on a port of 127.0.0.1.
wait_port() { for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "nothing listens on port $1" >&2; exit 1; }

# CPU time of processes, all threads, in nanoseconds (first field of schedstat).
cpu_ns() { local t=0 f; for p in "$@"; do for f in /proc/"$p"/task/*/schedstat; do t=$((t + $(cut -d' ' -f1 "$f"))); done; done; echo "$t"; }

# Sum, spread and median of numbers given as arguments; spread prints "LO MID HI".
total() { printf '%s\n' "$@" | awk '{ s += $1 } END { print s + 0 }'; }
spread() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; print v[1], m, v[NR] }'; }
median() { local lo mid hi; read -r lo mid hi < <(spread "$@"); echo "$mid"; }

# Peak resident memory of a process, in MB.
hwm_mb() { awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

# The configuration of a sidecar in front of the echo upstream: server_config FILE.
server_config() {
    cat > "$1" <<YAML
workload: {name: echo-v1, labels: {app: echo, version: v1}, serviceAccount: echo}
YAML
}

# The configuration of the load generator's sidecar, whose registry has the service
# `echo` behind the server sidecar's inbound port: client_config FILE PORT.
client_config() {
    cat > "$1" <<YAML
workload: {name: loadgen, labels: {app: loadgen, version: v1}, serviceAccount: loadgen}
registry:
  services:
  - name: echo
    ports: [80]
    endpoints:
    - {address: "127.0.0.1:$2", labels: {app: echo, version: v1}, workload: echo-v1, sidecar: true}
YAML
}

# An nginx reverse proxy with one worker, keep-alive to the next hop, in the background
# (its master's pid in `$!`): nginx_proxy DIR LISTEN_PORT UPSTREAM_PORT. The worker,
# whose CPU time counts, is `pgrep -P MASTER`.
nginx_proxy() {
    local dir
    dir=$(nginx_config "$@")
    taskset -c 0 "$(command -v nginx)" -p "$dir" -c "$dir/nginx.conf" >"$dir.log" 2>&1 &
    pids+=($!)
}

# Writes that nginx's configuration, DIR/nginx.conf, and prints DIR's absolute path:
# nginx_config DIR LISTEN_PORT UPSTREAM_PORT.
nginx_config() {
    local dir
    mkdir -p "$1"; dir=$(cd "$1" && pwd)
    cat > "$dir/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log stderr warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    upstream next { server 127.0.0.1:$3; keepalive 128; }
    server {
        listen 127.0.0.1:$2;
        location / {
            proxy_pass http://next;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }
    }
}
CONF
    echo "$dir"
}

# Waits up to SECONDS for something to listen on a port of 127.0.0.1 (a proxy starting
# under valgrind takes far longer than wait_port allows): wait_port_for SECONDS PORT.
wait_port_for() {
    local end=$((SECONDS + $1))
    while (( SECONDS < end )); do (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null && return 0; sleep 0.2; done
    echo "nothing listens on port $2 after $1 s" >&2; exit 1
}

# Context switches of a process so far, all threads: "VOLUNTARY INVOLUNTARY".
ctx_switches() {
    cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^voluntary_ctxt_switches/ { v += $2 } /^nonvoluntary_ctxt_switches/ { n += $2 } END { print v + 0, n + 0 }'
}

# A DestinationRule upgrading the calls to `echo` to HTTP/2 between the sidecars:
# h2_rule FILE (a client sidecar's configuration lists it under `resources`).
h2_rule() {
    cat > "$1" <<YAML
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: echo}
spec:
  host: echo
  trafficPolicy:
    connectionPool:
      http: {h2UpgradePolicy: UPGRADE}
YAML
}
