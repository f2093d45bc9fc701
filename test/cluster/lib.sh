# shellcheck shell=bash
# Shared by ./up and ./down (sourced, not run).
#
# A cluster is one state directory holding everything it owns: pki/, etcd data, logs, pid files,
# kubeconfig. MARKER in it is what allows ./down to `rm -rf` the directory, so a wrong argument can
# never delete anything else. The registry lists running state dirs, newest last, so that a bare
# ./down stops the most recently started cluster.

cache_root=${NODENET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nodenet}
registry="$cache_root/cluster/running"
MARKER=.nodenet-cluster

# registry_edit add|remove DIR. flock: several clusters may start and stop at once.
registry_edit() {
  local op=$1 dir=$2
  mkdir -p "$(dirname "$registry")"
  (
    flock 8
    local rest
    rest=$(grep -vxF -- "$dir" "$registry" 2>/dev/null || true)
    { [[ -n $rest ]] && printf '%s\n' "$rest"; [[ $op == add ]] && printf '%s\n' "$dir"; } >"$registry.tmp" || true
    mv "$registry.tmp" "$registry"
  ) 8>>"$registry.lock"
}

# Newest registered state dir that still exists, or nothing.
registry_latest() {
  local dir
  [[ -r $registry ]] || return 0
  while read -r dir; do
    [[ -f $dir/$MARKER ]] && { echo "$dir"; return 0; }
  done < <(tac "$registry")
}

# alive PID: running and not a zombie (./up's own children stay zombies until reaped).
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

# stop_process STATE_DIR NAME [GRACE_SECONDS]: end the process recorded in NAME.pid, if it is
# still ours. The command-line check guards against the pid having been reused by an unrelated
# process since.
stop_process() {
  local state=$1 name=$2 grace=${3:-10} pid i
  [[ -r $state/$name.pid ]] || return 0
  pid=$(<"$state/$name.pid")
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  if ! { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF -- "$state/"; then
    rm -f "$state/$name.pid"
    return 0
  fi
  # etcd and kube-apiserver shut down gracefully within a second or two, but an apiserver still
  # waiting for its storage ignores SIGTERM: don't wait for it forever.
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < grace * 10; i++)); do
    alive "$pid" || break
    sleep 0.1
  done
  if alive "$pid"; then
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do alive "$pid" || break; sleep 0.1; done
  fi
  rm -f "$state/$name.pid"
}

# stop_cluster STATE_DIR [GRACE_SECONDS]: apiserver first, so it does not log a storm of etcd
# errors on the way down.
stop_cluster() {
  stop_process "$1" kube-apiserver "${2:-10}"
  stop_process "$1" etcd "${2:-10}"
}
