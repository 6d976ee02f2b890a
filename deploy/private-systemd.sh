#!/bin/sh
# Boot, locate and stop a private systemd for development and CI on machines whose PID 1 is not systemd
# (DESIGN.md, "A real systemd on machines without one").
#
#   deploy/private-systemd.sh start   DIR [TIMEOUT_SECONDS]   boot it, wait until running, print its bus address
#   deploy/private-systemd.sh address DIR                     print the bus address for --systemd-bus
#   deploy/private-systemd.sh stop    DIR                     kill it by its pid (ends its whole pid namespace)
#
# DIR keeps unshare.pid, systemd.pid and private-systemd.log. Needs root, util-linux and dbus.
# It boots --unit=sockets.target (sysinit, journald, dbus; none of the host's enabled services such as
# postgresql, which would run on the host's data and be SIGKILLed at stop); set PRIVATE_SYSTEMD_UNIT=default
# for the default target. Run one per machine: instances share the host's cgroup tree.
# Clients outside the namespace must use the dbus-daemon socket printed by `address`: systemd's own
# /run/systemd/private socket refuses clients whose pid it cannot see (another pid namespace).
set -eu

usage() {
    echo "usage: $0 start|address|stop DIR [TIMEOUT_SECONDS]" >&2
    exit 2
}

[ $# -ge 2 ] || usage
command=$1
dir=$2
timeout=${3:-60}
unit=${PRIVATE_SYSTEMD_UNIT:-sockets.target}
unit_option=
[ "$unit" = default ] || unit_option=" --unit=$unit"

address() {
    echo "unix:path=/proc/$1/root/run/dbus/system_bus_socket"
}

# Whether pid $1 is alive (a zombie counts as dead).
alive() {
    [ -r "/proc/$1/stat" ] || return 1
    state=$(sed 's/.*) \(.\).*/\1/' "/proc/$1/stat")
    [ "$state" != Z ]
}

systemd_pid() {
    pid=$(cat "$dir/systemd.pid" 2>/dev/null) || { echo "no private systemd recorded in $dir" >&2; exit 1; }
    unshare_pid=$(cat "$dir/unshare.pid")
    # Refuse a recycled pid: it must still be systemd, child of our unshare.
    if ! alive "$pid" || [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != systemd ] ||
        [ "$(sed 's/.*) . \([0-9]*\).*/\1/' "/proc/$pid/stat")" != "$unshare_pid" ]; then
        echo "the private systemd recorded in $dir (pid $pid) is not running" >&2
        exit 1
    fi
    echo "$pid"
}

case $command in
start)
    [ "$(id -u)" = 0 ] || { echo "booting a private systemd needs root" >&2; exit 1; }
    if [ -d /run/systemd/system ] && [ "$(cat /proc/1/comm)" = systemd ]; then
        echo "PID 1 is systemd here: use the host's systemd (no --systemd-bus needed)" >&2
        exit 1
    fi
    mkdir -p "$dir"
    if [ -s "$dir/systemd.pid" ] && (systemd_pid >/dev/null 2>&1); then
        echo "already running: $(address "$(cat "$dir/systemd.pid")")" >&2
        exit 1
    fi
    rm -f "$dir/unshare.pid" "$dir/systemd.pid"
    # Its own tmpfs on /run, /tmp and /var/tmp: at boot systemd-tmpfiles empties /tmp, which without it would
    # be the host's. --kill-child: systemd dies if unshare is killed.
    setsid unshare --pid --fork --kill-child=SIGKILL --mount --mount-proc --propagation private \
        sh -c "for d in /run /tmp /var/tmp /var/log; do mount -t tmpfs tmpfs \$d; done; mount --make-rshared /; exec /lib/systemd/systemd --system$unit_option" \
        </dev/null >"$dir/private-systemd.log" 2>&1 &
    unshare_pid=$!
    echo "$unshare_pid" >"$dir/unshare.pid"
    deadline=$(($(date +%s) + timeout))
    pid=
    while :; do
        for child in $(cat /proc/"$unshare_pid"/task/*/children 2>/dev/null); do
            [ "$(cat "/proc/$child/comm" 2>/dev/null)" = systemd ] && pid=$child
        done
        [ -n "$pid" ] && break
        alive "$unshare_pid" || { echo "unshare exited; see $dir/private-systemd.log" >&2; exit 1; }
        [ "$(date +%s)" -lt "$deadline" ] || { echo "systemd did not start; see $dir/private-systemd.log" >&2; exit 1; }
        sleep 0.05
    done
    echo "$pid" >"$dir/systemd.pid"
    while :; do
        state=$(busctl --address="$(address "$pid")" get-property org.freedesktop.systemd1 /org/freedesktop/systemd1 \
            org.freedesktop.systemd1.Manager SystemState 2>/dev/null | tr -d '"' | cut -d' ' -f2) || state=
        case $state in running | degraded) break ;; esac
        if [ "$(date +%s)" -ge "$deadline" ]; then
            echo "systemd (pid $pid) did not reach running within ${timeout}s (state: ${state:-no answer}); stopping it" >&2
            kill -KILL "$pid"
            exit 1
        fi
        sleep 0.1
    done
    address "$pid"
    ;;
address)
    pid=$(systemd_pid)
    address "$pid"
    ;;
stop)
    pid=$(systemd_pid)
    unshare_pid=$(cat "$dir/unshare.pid")
    # systemd is PID 1 of its namespace: SIGKILL from outside ends it and every process in the namespace.
    kill -KILL "$pid"
    for _ in $(seq 200); do
        alive "$unshare_pid" || break
        sleep 0.05
    done
    if alive "$unshare_pid"; then
        echo "unshare (pid $unshare_pid) is still running" >&2
        exit 1
    fi
    rm -f "$dir/systemd.pid" "$dir/unshare.pid"
    echo "stopped"
    ;;
*)
    usage
    ;;
esac
