#!/usr/bin/env bash
# The VM part of the benchmarks (issue 9), called by `scripts/bench.sh --vm` / `--vm-only`:
# runs tests/vm_bench.rs (booted Debian 12 guests under QEMU TCG, see that file for the method)
# and prints the Markdown section of BENCHMARKS.md made from its results.
#
#   scripts/bench-vm.sh run DIR      # run the VM benchmark, one <profile>.json per profile in DIR
#   scripts/bench-vm.sh section DIR  # print the Markdown section made from DIR's results
#
# Knobs (environment): PHANES_VM_BENCH_PROFILES (default minimal,web,database),
# PHANES_VM_BENCH_RUNS (default 5), PHANES_VM_CACHE (the VM image cache), PHANES_VM_SLOTS.
# Needs what the VM tests need (qemu-system-x86, qemu-utils, cloud-image-utils, openssh-client;
# mmdebstrap and root once, to build the image) and jq.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: $0 run|section DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
dir=$2

run() {
  mkdir -p "$dir"
  rm -f "$dir"/*.json
  local t0=$SECONDS
  # Only the benchmark itself: the file's two small tests need no VM and run with the others.
  PHANES_VM_BENCH=1 PHANES_VM_BENCH_OUT="$(realpath "$dir")" \
    cargo test --release --test vm_bench -- --exact vm_bench --nocapture --test-threads=1 >&2
  # The same spawn loop on the host, for a rough TCG-to-host factor (only /bin/true runs here).
  local host_runs=() t0us
  for _ in 1 2 3 4 5; do
    t0us=${EPOCHREALTIME/./}
    bash -c 'for i in $(seq 1000); do /bin/true; done'
    host_runs+=($((${EPOCHREALTIME/./} - t0us)))
  done
  local host_us
  host_us=$(printf '%s\n' "${host_runs[@]}" | sort -n | sed -n 3p)
  jq -n --arg c "$(git rev-parse --short HEAD)" --arg d "$(date -u '+%Y-%m-%d %H:%M UTC')" \
    --argjson s $((SECONDS - t0)) --arg cpu "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" \
    --arg nproc "$(nproc)" --arg qemu "$(qemu-system-x86_64 --version | head -1)" \
    --argjson h "$host_us" --arg hl "$(cut -d' ' -f1-3 /proc/loadavg)" \
    '{commit: $c, date: $d, seconds: $s, host_cpu: $cpu, host_nproc: $nproc, qemu: $qemu,
      host_true_1000_s: ($h / 1e6), host_load_at_spawn_loop: $hl}' >"$dir/run.meta"
}

# s SECONDS: seconds with a precision that suits their size.
s() { awk -v t="$1" 'BEGIN { if (t >= 100) printf "%.0f s", t; else if (t >= 10) printf "%.1f s", t; else printf "%.2f s", t }'; }

section() {
  local meta=$dir/run.meta files=() f
  [ -f "$meta" ] || { echo "no $meta: run '$0 run $dir' first" >&2; exit 1; }
  # The built-in profiles in a fixed order, then any other.
  for f in minimal web database coolify dev; do [ -e "$dir/$f.json" ] && files+=("$dir/$f.json"); done
  for f in "$dir"/*.json; do
    case " ${files[*]} " in *" $f "*) ;; *) [ -e "$f" ] && files+=("$f") ;; esac
  done
  ((${#files[@]})) || { echo "no results in $dir" >&2; exit 1; }
  local runs guest profiles
  runs=$(jq -r .runs "${files[0]}")
  guest=${files[0]}
  profiles=$(for f in "${files[@]}"; do jq -r .profile "$f"; done | paste -sd, - | sed 's/,/, /g')

  cat <<EOF
## Bundle runs in a booted VM

Measured by \`scripts/bench-vm.sh run\` (the VM part of \`scripts/bench.sh --vm\`; it runs
\`tests/vm_bench.rs\`), finished $(jq -r .date "$meta") at commit \`$(jq -r .commit "$meta")\`; the VM part took
$(jq -r '.seconds / 60 | floor' "$meta") min for the profiles $profiles. Every figure in this section is from that run.

### Findings

$(for f in "${files[@]}"; do finding "$f"; done)
- Process start-up alone, on the host: 1000 × \`/bin/true\` from a bash loop takes $(s "$(jq .host_true_1000_s "$meta")") (median of 5,
  load $(jq -r .host_load_at_spawn_loop "$meta")); in the guests $(for f in "${files[@]}"; do jq -r '"\(.profile) \(.bundle.spawn_baseline.seconds.median / .bundle.spawn_baseline.programs * 1000 * 100 | round / 100) s"' "$f"; done | paste -sd, - | sed 's/,/, /g') per 1000.
  Taking the ratio as TCG's slow-down is rough (TCG slows some work more than other), but it puts the no-op figures
  in proportion: $(for f in "${files[@]}"; do jq -r --argjson h "$(jq .host_true_1000_s "$meta")" '"\(.profile) \((.bundle.noop.median / ((.bundle.spawn_baseline.seconds.median / .bundle.spawn_baseline.programs * 1000) / $h)) * 100 | round / 100) s"' "$f"; done | paste -sd, - | sed 's/,/, /g') on a machine like this host, by that factor.
  The issue's target (the web profile's no-op run in about a second on a real server) is a real-server figure.

### Method

- **Guest**: $(jq -r .bundle.guest.os "$guest") (kernel $(jq -r .bundle.guest.kernel "$guest"), bash $(jq -r .bundle.guest.bash "$guest")), the image of
  \`tests/e2e/build-image.sh\` (a provider-like cloud image: mmdebstrap, cloud-init, no docs or man pages), booted by
  $(jq -r .qemu "$meta") with **TCG** (software emulation, no KVM): $(jq -r .bundle.guest.nproc "$guest") vCPUs, $(jq -r .bundle.guest.memory "$guest"),
  user-mode network. Packages come from deb.debian.org over this machine's connection, so the apt figures
  include the mirror's and the network's speed at the time. Under TCG every instruction is emulated: absolute
  times are many times those of a real server; the ratios are the figures to read.
- **Host**: $(jq -r .host_cpu "$meta"), $(jq -r .host_nproc "$meta") CPUs, shared: builds may run at the same time (load
  averages below), but no other guest: each benchmark guest holds every VM slot of the machine, so
  it never shares the CPUs with another TCG guest.
- **Two fresh guests per profile**, from the same image, each booted with the same bare \`#cloud-config\` (one
  login user with sudo; nothing of phanes): a package install cannot be undone cheaply, and a guest that already
  has the packages or apt's lists would flatter whatever runs second. The floor guest runs first, then is
  stopped; the bundle guest boots after it. Before every measurement the harness waits for the boot to finish
  and for apt's own timers (apt-daily, apt-daily-upgrade) to be idle.
- **Floor** (first guest): \`apt-get update\`, then one \`apt-get install\` of exactly the bundle's package set
  (read from the rendered setup.sh's \`packages.install\` step and checked against \`phanes plan\`), with the
  options the bundle's apt calls use (non-interactive, \`--force-confdef --force-confold\`, recommends as apt's
  default).
- **Bundle** (second guest): setup.sh copied over SSH and run as root with \`--json\`: the **first run**, then
  **$runs no-op runs** (each must report every step ok or skipped) and **$runs \`--dry-run\`s** (each must find no
  drift). Times are wall time measured inside the guest (\`\$EPOCHREALTIME\` around the command: no SSH in it).
  *median* and *spread* (min – max) are over the $runs runs.
- **Process spawns**: strace (installed from Debian after the timed runs) on one more no-op run and one more
  dry run: \`strace -f --seccomp-bpf -e trace=execve,fork,vfork,clone,clone3,write\`. *programs* counts successful execve
  calls, *forks* new processes (fork, vfork, clone without CLONE_THREAD: subshells and command substitutions
  fork without running a program). Per step: what happens between two JSON lines the bundle prints, so the
  first step's count includes the start-up (options, preflight checks).
- **Spawn baseline**: \`bash -c 'for i in \$(seq N); do /bin/true; done'\` in the same guest, N = the programs
  of the no-op run, $runs runs: the time it takes just to start that many processes.

EOF
  for f in "${files[@]}"; do profile_section "$f"; done
}

# finding FILE: one profile's headline figures, as a list item.
finding() {
  jq -r '"- **\(.profile)**: first run \(.bundle.first_run.wall_s | round) s, **\(.bundle.first_run.wall_s / .floor.total_s * 100 | round / 100) × the floor** (\(.floor.total_s | round) s for apt-get update + install of the same \(.packages | length) packages); no-op run \(.bundle.noop.median * 100 | round / 100) s (median of \(.runs); \(.bundle.spawns_noop.execs) programs and \(.bundle.spawns_noop.forks) forks), of which starting its \(.bundle.spawn_baseline.programs) programs from a bash loop alone takes \(.bundle.spawn_baseline.seconds.median * 100 | round / 100) s (\(.bundle.spawn_baseline.seconds.median / .bundle.noop.median * 100 | round) %); dry run \(.bundle.dry_run.median * 100 | round / 100) s."' "$1"
}

# profile_section FILE: one profile's table and notes.
profile_section() {
  local f=$1 p
  p=$(jq -r .profile "$f")
  local floor first noop noop_min noop_max dry dry_min dry_max base base_min base_max n execs forks
  floor=$(jq .floor.total_s "$f")
  first=$(jq .bundle.first_run.wall_s "$f")
  read -r noop noop_min noop_max < <(jq -r '.bundle.noop | "\(.median) \(.min) \(.max)"' "$f")
  read -r dry dry_min dry_max < <(jq -r '.bundle.dry_run | "\(.median) \(.min) \(.max)"' "$f")
  read -r base base_min base_max < <(jq -r '.bundle.spawn_baseline.seconds | "\(.median) \(.min) \(.max)"' "$f")
  n=$(jq .bundle.spawn_baseline.programs "$f")
  execs=$(jq .bundle.spawns_noop.execs "$f")
  forks=$(jq .bundle.spawns_noop.forks "$f")
  local ratio spawn_share
  ratio=$(awk -v a="$first" -v b="$floor" 'BEGIN { printf "%.2f", a / b }')
  spawn_share=$(awk -v a="$base" -v b="$noop" 'BEGIN { printf "%.0f", 100 * a / b }')
  cat <<EOF
### $p

$(jq -r '.packages | length' "$f") packages: $(jq -r '.packages | join(", ")' "$f").
Config: the profile's defaults plus \`profile_config\` in tests/vm_bench.rs (hostname, the admin user with the test
key, the harness's address exempt from fail2ban$(jq -r 'if (.config | test("source: distro")) then ", `source: distro` for the services: vendor repositories are not reachable here" else "" end' "$f")).
Load average (1/5/15 min): host before $(jq -r .host_load_before "$f"), after $(jq -r .host_load_after "$f"); bundle guest before the first run
$(jq -r .bundle.guest_load_before "$f"), after the dry runs $(jq -r .bundle.guest_load_after "$f"); floor guest before $(jq -r .floor.guest_load_before "$f"), after $(jq -r .floor.guest_load_after "$f").

| measure | median | spread (min – max) | runs |
|---|---|---|---|
| floor: \`apt-get update\` | $(s "$(jq .floor.update_s "$f")") | | 1 |
| floor: \`apt-get install\` of the package set | $(s "$(jq .floor.install_s "$f")") | | 1 |
| **floor** (update + install) | **$(s "$floor")** | | 1 |
| **first run** of setup.sh | **$(s "$first")** | | 1 |
| **first run / floor** | **$ratio** | | |
| **no-op run** ($(jq .bundle.noop_steps "$f") steps) | **$(s "$noop")** | $(s "$noop_min") – $(s "$noop_max") | $(jq '.bundle.noop.runs | length' "$f") |
| \`--dry-run\` | $(s "$dry") | $(s "$dry_min") – $(s "$dry_max") | $(jq '.bundle.dry_run.runs | length' "$f") |
| process spawns per no-op run | $execs programs, $forks forks | | 1 (traced) |
| process spawns per dry run | $(jq .bundle.spawns_dry_run.execs "$f") programs, $(jq .bundle.spawns_dry_run.forks "$f") forks | | 1 (traced) |
| $n × \`/bin/true\` from a bash loop | $(s "$base") | $(s "$base_min") – $(s "$base_max") | $(jq '.bundle.spawn_baseline.seconds.runs | length' "$f") |
| spawn baseline / no-op run | $spawn_share % | | |

- First run, slowest steps: $(jq -r '[.bundle.first_run.slowest_steps[:5][] | "\(.step) \(.seconds * 10 | round / 10) s (\(.status))"] | join(", ")' "$f").
- No-op run, slowest steps (median of the runs): $(jq -r '[.bundle.noop_slowest_steps[:5][] | "\(.step) \(.median_s * 100 | round / 100) s"] | join(", ")' "$f").
- No-op run, most process spawns (programs / forks): $(jq -r '[.bundle.spawns_noop.top_steps[:6][] | "\(.step) \(.execs) / \(.forks)"] | join(", ")' "$f").
- Time: floor guest $(s "$(jq .floor.phase_s "$f")") (of it waiting for a VM slot, booting and settling: $(s "$(jq .floor.boot_s "$f")")), bundle guest $(s "$(jq .bundle.phase_s "$f")") (of it the same: $(s "$(jq .bundle.boot_s "$f")")).

EOF
}

case $1 in
  run) run ;;
  section) section ;;
  *) usage ;;
esac
