# Shared by bench/run, bench/ab and scripts/pgo (sourced, from the repo
# root): a work dir cleaned at exit, the certificate, fedigate's bench
# config, readiness, CPU accounting and medians.
# The caller sets: work (a temp dir) and pids (an array).

cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }

need_ports() { # PORT...: fail when one is in use
  local port
  for port in "$@"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "bench: port $port is already in use; stop what listens there first" >&2
      exit 1
    fi
  done
}

bench_cert() { # -> $work/cert.pem, $work/key.pem
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
}

# fedigate_conf NAME PRESET PORT BACKEND LOG: $work/NAME.toml; LOG = on
# (log.level info: the access log, as shipped) or off (warn: none).
fedigate_conf() {
  local level=info
  [ "$5" = off ] && level=warn
  cat > "$work/$1.toml" <<CONF
preset = "$2"
[server]
listen = "127.0.0.1:$3"
http3 = false
[tls]
mode = "files"
state_dir = "$work/$1-state"
cert_file = "$work/cert.pem"
key_file = "$work/key.pem"
[backend]
web = "http://$4"
streaming = ""
[egress]
listen = ""
[admin]
listen = ""
[log]
level = "$level"
CONF
}

wait_ready() { # NAME URL
  for _ in $(seq 100); do
    curl -skf "$2" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  curl -skf "$2" >/dev/null || { echo "bench: $1 does not answer"; cat "$work"/*.log >&2 || true; exit 1; }
}

# cpu_ticks PID: CPU time (clock ticks) PID and its children have used
# (nginx's workers). CPU per request is steadier than req/s on a machine
# shared with the load generator and the backend.
cpu_ticks() {
  local total=0 p
  for p in $1 $(pgrep -P "$1" || true); do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
HZ=$(getconf CLK_TCK)

# us_per_req TICKS RPS SECS
us_per_req() { awk -v t="$1" -v hz="$HZ" -v r="$2" -v s="$3" 'BEGIN { printf "%.1f", t / hz * 1e6 / (r * s) }'; }

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

# round_order ROUND NAME...: the names rotated by ROUND-1, so that over as
# many rounds as names each contestant runs once in every position, after
# every other one. A fixed order measured each one after the same
# neighbour: the one after Caddy lost about a fifth of its rate (Caddy is
# still busy when its round ends), which a rotation spreads over all.
round_order() {
  local r=$1; shift
  local n=$# i
  local names=("$@")
  for ((i = 0; i < n; i++)); do echo "${names[(i + r - 1) % n]}"; done
}

# settle: a pause between contestants, for the last one's leftovers
# (closing connections, a collection) to end before the next is measured.
settle() { sleep "${SETTLE:-1}"; }
