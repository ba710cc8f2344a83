#!/usr/bin/env bash
# Regenerates BENCHMARKS.md from one run (issue 9): criterion render benchmarks (cargo bench),
# process wall time of `phanes render --out` (hyperfine), and artifact sizes against the providers'
# user-data limits. Every figure in the file comes from this run.
#
#   scripts/bench.sh            # writes BENCHMARKS.md in the repository root
#   scripts/bench.sh --vm       # the same, plus the VM section (scripts/bench-vm.sh: bundles run in
#                               # booted Debian 12 guests; tens of minutes)
#   scripts/bench.sh --vm-only  # only the VM section, replaced in the existing BENCHMARKS.md
#   BENCH_OUT=/tmp/b.md scripts/bench.sh
#   HYPERFINE_RUNS=50 scripts/bench.sh
#   PHANES_VM_BENCH_RESULTS=DIR scripts/bench.sh --vm-only  # format DIR's results of an earlier
#                               # `scripts/bench-vm.sh run DIR` instead of running the VM again
#
# Needs cargo, jq, gzip and hyperfine; jq and hyperfine are installed with apt-get when missing.
# Without --vm it only renders: no rendered bundle is ever executed on this machine. With --vm the
# bundles run inside the guests only. Without --vm, a VM section already in the file is kept as it
# is (it carries its own date and commit).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=${BENCH_OUT:-$root/BENCHMARKS.md}
runs=${HYPERFINE_RUNS:-30}
vm=0 render=1
case ${1:-} in
  "") ;;
  --vm) vm=1 ;;
  --vm-only) vm=1 render=0 ;;
  -h | --help)
    sed -n '2,/^set -euo/p' "$0" | sed '$d'
    exit 0
    ;;
  *)
    echo "usage: $0 [--vm | --vm-only]" >&2
    exit 2
    ;;
esac

need=()
[ "$render" = 0 ] || command -v hyperfine >/dev/null || need+=(hyperfine)
command -v jq >/dev/null || need+=(jq)
if ((${#need[@]})); then
  echo "installing ${need[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

target=$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)

# Whether setup.sh of any of the profiles (default config) differs between commit $1 and the
# work tree: prints those profiles and succeeds if so. Builds $1 in a temporary worktree. The VM
# figures measure setup.sh only, so other changes (the AWS minifier, the CLI) leave them valid.
setup_changed_since() {
  local commit=$1 tree changed=() profile
  shift
  tree=$(mktemp -d)
  git worktree add --detach -q "$tree/src" "$commit"
  CARGO_TARGET_DIR="$tree/target" cargo build --release -q --manifest-path "$tree/src/Cargo.toml" >&2
  cargo build --release -q >&2
  mkdir "$tree/empty" # no phanes.yaml: the defaults
  for profile in "$@"; do
    if ! cmp -s <(cd "$tree/empty" && "$tree/target/release/phanes" render --profile "$profile") \
      <(cd "$tree/empty" && "$target/release/phanes" render --profile "$profile"); then
      changed+=("$profile")
    fi
  done
  git worktree remove --force "$tree/src"
  rm -rf "$tree"
  [ ${#changed[@]} -gt 0 ] && echo "${changed[*]}"
}

# The VM section lives between these markers at the end of the file.
vm_begin='<!-- vm-bench:begin -->' vm_end='<!-- vm-bench:end -->'
vm_section=""
if [ -f "$out" ]; then
  vm_section=$(sed -n "/^$vm_begin\$/,/^$vm_end\$/p" "$out")
fi
if [ "$vm" = 1 ]; then
  vm_results=${PHANES_VM_BENCH_RESULTS:-}
  if [ -z "$vm_results" ]; then
    vm_results=$(mktemp -d)
    scripts/bench-vm.sh run "$vm_results"
  fi
  vm_section="$vm_begin"$'\n'"$(scripts/bench-vm.sh section "$vm_results")"$'\n'"$vm_end"
fi
if [ -n "$vm_section" ]; then
  vm_note="Bundles running on a server (first run against the floor, no-op runs, \`--dry-run\`, process
spawns) are measured in booted TCG guests: see [Bundle runs in a booted VM](#bundle-runs-in-a-booted-vm) at the
end, which has its own date and commit (\`scripts/bench.sh --vm\` regenerates everything, \`--vm-only\`
that section alone)."
  # The VM section keeps the commit it was measured at; say when the bundle it ran changed since.
  vm_commit=$(grep -oE 'at commit .[0-9a-f]+.' <<<"$vm_section" | grep -oE '[0-9a-f]{7,}' | head -n1)
  vm_profiles=$(grep -oE 'for the profiles [a-z0-9, -]+' <<<"$vm_section" | head -n1 | sed 's/^for the profiles //; s/,/ /g')
  if [ -n "$vm_commit" ] && ! git cat-file -e "$vm_commit^{commit}" 2>/dev/null; then
    vm_note+="
**The VM figures may predate changes to the bundle:** their commit \`$vm_commit\` is not in this repository, so setup.sh cannot be compared; \`scripts/bench.sh --vm\` measures again."
  elif [ -n "$vm_commit" ] && [ "$(git rev-parse --short "$vm_commit")" != "$(git rev-parse --short HEAD)" ]; then
    # shellcheck disable=SC2086 # one word per profile
    if changed_profiles=$(setup_changed_since "$vm_commit" $vm_profiles); then
      vm_note+="
**The VM figures predate changes to the bundle:** setup.sh of $changed_profiles, rendered with the defaults, differs between their commit \`$vm_commit\` and this file's, so cheaper checks and smaller bundles since then are not in them; \`scripts/bench.sh --vm\` measures again."
    else
      vm_note+="
The VM section's commit \`$vm_commit\` is older than this file's, but setup.sh of each profile it measured ($vm_profiles), rendered with the defaults, is byte for byte the same at both."
    fi
  fi
else
  vm_note="**Not measured in this file:** bundles running on a server; \`scripts/bench.sh --vm\` adds the VM section."
fi

# The VM section with a blank line before it, for the heredoc below ($'\n' is not read there).
vm_block=""
[ -z "$vm_section" ] || vm_block=$'\n'"$vm_section"$'\n'

if [ "$render" = 0 ]; then
  [ -f "$out" ] || {
    echo "--vm-only needs an existing $out (run without --vm-only first)" >&2
    exit 1
  }
  # The section, and the paragraph of the findings that points to it (or says it is missing).
  rest=$(sed "/^$vm_begin\$/,/^$vm_end\$/d" "$out" | NOTE=$vm_note awk '
    /^\*\*Not built yet:\*\* the VM benchmark/ || /^\*\*Not measured in this file:\*\*/ || /^Bundles running on a server/ { skip = 1; print ENVIRON["NOTE"] }
    skip && /^$/ { skip = 0 }
    !skip')
  # $(...) drops the trailing blank lines: one blank line between the rest and the section.
  printf '%s\n\n%s\n' "$rest" "$vm_section" >"$out.tmp"
  mv "$out.tmp" "$out"
  echo "wrote the VM section of $out" >&2
  exit 0
fi

load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# --- 1. criterion -------------------------------------------------------------------------------
rm -rf "$target/criterion"
cargo bench --bench render -- --noplot >&2
crit=$target/criterion

# --- 2./3. the binary: sizes and wall time ------------------------------------------------------
cargo build --release >&2
phanes=$target/release/phanes
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# An empty folder and an empty config: no phanes.yaml or profiles/ of the caller's leaks in.
mkdir -p "$work/empty/profiles"
printf '{}\n' >"$work/empty/config.yaml"
cd "$work/empty"

# Must match ALL_MODULES_SETS and ALL_MODULES_LEFT_OUT in benches/render.rs (coolify conflicts with
# nginx and caddy; the coolify profile measures it).
all_modules=$("$phanes" list modules -c config.yaml | awk '$1 != "coolify" {print $1}' | paste -sd, -)
all_sets=(--set caddy.http_port=8080 --set caddy.https_port=8443)
profiles=$("$phanes" list profiles -c config.yaml | awk '{print $1}')

# args_for NAME: the render arguments of a profile, or of the synthetic all-modules one.
args_for() {
  if [ "$1" = all-modules ]; then
    echo "-c config.yaml --profile minimal --modules $all_modules ${all_sets[*]}"
  else
    echo "-c config.yaml --profile $1"
  fi
}

size_rows=""
largest="" largest_size=0
for name in $profiles all-modules; do
  # shellcheck disable=SC2046 # args_for is split on purpose
  "$phanes" render $(args_for "$name") --out "$work/out-$name" >/dev/null 2>&1
  setup=$work/out-$name/setup.sh
  raw=$(stat -c %s "$setup")
  gz=$(gzip -9 -n -c "$setup" | wc -c)
  ud=$(stat -c %s "$work/out-$name/user-data.yaml")
  fits=""
  for p in hetzner digitalocean aws; do
    # The real check: `--provider` exits 1 when user-data is over the limit.
    # shellcheck disable=SC2046
    if "$phanes" render $(args_for "$name") --format cloud-init --provider "$p" --out "$work/$p-$name" >/dev/null 2>"$work/$p-$name.err"; then
      fits+=" yes |"
    else
      fits+=" **NO** |"
    fi
  done
  # AWS gets user-data.yaml.gz; when it is over the limit, its size is in the error.
  if [ -f "$work/aws-$name/user-data.yaml.gz" ]; then
    aws_gz=$(stat -c %s "$work/aws-$name/user-data.yaml.gz")
  else
    aws_gz=$(grep -oE 'user-data.yaml.gz is [0-9]+ bytes' "$work/aws-$name.err" | grep -oE '[0-9]+')
  fi
  # With --bundle-url the user-data pins setup.sh instead of carrying it (any URL will do here).
  # shellcheck disable=SC2046
  if "$phanes" render $(args_for "$name") --format cloud-init --provider aws \
    --bundle-url https://example.org/setup.sh --out "$work/aws-url-$name" >/dev/null 2>&1; then
    url_fits=yes
  else
    url_fits="**NO**"
  fi
  url_ud=$(stat -c %s "$work/aws-url-$name/user-data.yaml" 2>/dev/null || echo "-")
  size_rows+="| $name | $raw | $gz | $ud | $aws_gz |$fits $url_ud | $url_fits |"$'\n'
  if [ "$name" != all-modules ] && [ "$raw" -gt "$largest_size" ]; then
    largest=$name largest_size=$raw
  fi
done

hf_rows=""
# hf SLUG LABEL ARGS...: hyperfine one command line into hf-SLUG.json; a row of the wall-time table.
hf() {
  local slug=$1 label=$2
  shift 2
  hyperfine -N --warmup 3 --runs "$runs" --export-json "$work/hf-$slug.json" "$*" >&2
  hf_rows+=$(jq -r --arg n "$label" '.results[0] | def ms: . * 1000 * 100 | round / 100;
    "| \($n) | \(.median|ms) | \(.stddev|ms) | \(.min|ms) – \(.max|ms) | \(.user|ms) | \(.system|ms) | \(.times|length) |"' \
    "$work/hf-$slug.json")$'\n'
}
# shellcheck disable=SC2046
hf largest-out "\`$largest\`, --out" "$phanes" render $(args_for "$largest") --out "$work/hf-out-$largest"
# shellcheck disable=SC2046
hf all-out "\`all-modules\`, --out" "$phanes" render $(args_for all-modules) --out "$work/hf-out-all-modules"
# shellcheck disable=SC2046
hf largest-stdout "\`$largest\`, setup.sh to stdout" "$phanes" render $(args_for "$largest")
hf_largest_ms=$(jq '.results[0].median*1000' "$work/hf-largest-out.json")
hf_largest_cpu_ms=$(jq '(.results[0].user + .results[0].system)*1000' "$work/hf-largest-out.json")
hf_all_ms=$(jq '.results[0].median*1000' "$work/hf-all-out.json")
hf_stdout_ms=$(jq '.results[0].median*1000' "$work/hf-largest-stdout.json")
hyperfine_version=$(hyperfine --version)
cd "$root"

# --- criterion figures --------------------------------------------------------------------------
# fmt_ns NS: a duration with a readable unit.
fmt_ns() {
  awk -v t="$1" 'BEGIN {
    if (t >= 1e6) printf "%.2f ms", t / 1e6; else if (t >= 1e3) printf "%.1f µs", t / 1e3; else printf "%.0f ns", t }'
}
# crit_row GROUP ID: median, IQR and range of the per-iteration sample times, and the median's 95% CI.
crit_row() {
  local dir=$crit/$1/$2/new
  local med lo hi p25 p75 min max
  read -r med lo hi < <(jq -r '.median | "\(.point_estimate) \(.confidence_interval.lower_bound) \(.confidence_interval.upper_bound)"' "$dir/estimates.json")
  read -r p25 p75 min max < <(jq -r '[.times, .iters] | transpose | map(.[0] / .[1]) | sort |
    "\(.[(length*0.25|floor)]) \(.[(length*0.75|floor)]) \(.[0]) \(.[-1])"' "$dir/sample.json")
  echo "| \`$1/$2\` | $(fmt_ns "$med") | $(fmt_ns "$lo") – $(fmt_ns "$hi") | $(fmt_ns "$p25") – $(fmt_ns "$p75") | $(fmt_ns "$min") – $(fmt_ns "$max") | $(jq '.iters | length' "$dir/sample.json") |"
}
crit_median() { jq '.median.point_estimate' "$crit/$1/$2/new/estimates.json"; }

crit_rows=""
for name in $profiles all-modules; do crit_rows+=$(crit_row compile_render "$name")$'\n'; done
crit_rows+=$(crit_row stages compile)$'\n'
crit_rows+=$(crit_row stages render_all)$'\n'
crit_rows+=$(crit_row environment parse)$'\n'
for n in 1 10 100 1000; do crit_rows+=$(crit_row users "$n")$'\n'; done

# Scaling from the fastest sample of each case: the least disturbed by other load on the machine.
crit_min() { jq '[.times, .iters] | transpose | map(.[0] / .[1]) | min' "$crit/$1/$2/new/sample.json"; }
u10=$(crit_min users 10) u100=$(crit_min users 100) u1000=$(crit_min users 1000)
per_user_low=$(awk -v a="$u10" -v b="$u100" 'BEGIN { printf "%.1f", (b - a) / 90 / 1e3 }')
per_user_high=$(awk -v a="$u100" -v b="$u1000" 'BEGIN { printf "%.1f", (b - a) / 900 / 1e3 }')
scaling_ratio=$(awk -v a="$u10" -v b="$u100" -v c="$u1000" 'BEGIN { l = (b - a) / 90; h = (c - b) / 900; if (l > 0) printf "%.2f", h / l; else print "n/a" }')
env_ns=$(crit_median environment parse)
all_ns=$(crit_median compile_render all-modules)

# --- findings: figures that miss the issue's targets ---------------------------------------------
findings=""
over50=$(awk -v m="$hf_largest_ms" 'BEGIN { print (m > 50) }')
if [ "$over50" = 1 ]; then
  findings+="- **Render is over the 50 ms target**: \`phanes render --out\` of the largest built-in profile ($largest) takes a median of $(printf %.1f "$hf_largest_ms") ms of wall time, but only $(printf %.1f "$hf_largest_cpu_ms") ms of CPU (user + system); the same render with setup.sh to stdout instead of --out takes $(printf %.1f "$hf_stdout_ms") ms. Wall time beyond CPU time is waiting, on this shared machine, for a free CPU (see the load average and the spread; \`--out\` does not sync its files). In process, compile + render of every artifact takes $(fmt_ns "$(crit_median compile_render "$largest")") (criterion, below)."$'\n'
else
  findings+="- Render meets the 50 ms target: \`phanes render --out\` of the largest built-in profile ($largest) takes a median of $(printf %.1f "$hf_largest_ms") ms of process wall time; the all-modules profile $(printf %.1f "$hf_all_ms") ms."$'\n'
fi
while IFS='|' read -r _ name _raw _gz ud aws_gz het dig aws url_ud url_fits _; do
  name=$(echo "$name" | xargs) ud=$(echo "$ud" | xargs) aws_gz=$(echo "$aws_gz" | xargs)
  url_ud=$(echo "$url_ud" | xargs) url_fits=$(echo "$url_fits" | xargs)
  [ -n "$name" ] || continue
  kind="built-in profile"
  [ "$name" = all-modules ] && kind="synthetic, every module; not a built-in profile, so no size target"
  [[ $het == *NO* ]] && findings+="- **$name** ($kind): user-data is $ud bytes, **over Hetzner's 32 KiB** (32768)."$'\n'
  [[ $dig == *NO* ]] && findings+="- **$name** ($kind): user-data is $ud bytes, **over DigitalOcean's 64 KiB** (65536)."$'\n'
  if [[ $aws == *NO* ]]; then
    findings+="- **$name** ($kind): user-data.yaml.gz is $aws_gz bytes, **over AWS's 16 KiB** (16384) by $((aws_gz - 16384)) bytes with the bundle inside"
    case $name in minimal | web) findings+=" (the issue's target is that $name fits AWS)" ;; esac
    if [[ $url_fits == yes ]]; then
      findings+="; with \`--bundle-url\` its user-data.yaml is $url_ud bytes and fits."
    else
      findings+="; with \`--bundle-url\` it **does not fit either**."
    fi
    findings+=$'\n'
  fi
  if [ "$name" != all-modules ] && [[ $het != *NO* ]]; then
    findings+="- $name: user-data $ud bytes, under Hetzner's 32 KiB with $((32768 - ud)) bytes ($(( (32768 - ud) * 100 / 32768 ))%) to spare."$'\n'
  fi
  if [ "$name" != all-modules ] && [[ $aws != *NO* ]]; then
    findings+="- $name: user-data.yaml.gz $aws_gz bytes, under AWS's 16 KiB with $((16384 - aws_gz)) bytes ($(( (16384 - aws_gz) * 100 / 16384 ))%) to spare."$'\n'
  fi
done <<<"$size_rows"
scaling_word=$(awk -v r="$scaling_ratio" 'BEGIN {
  if (r == "n/a") print "**Users: no ratio** (the 10 -> 100 user difference is inside the noise)"
  else if (r < 1.5) print "Users scale linearly"
  else if (r < 3) print "Users scale somewhat above linear, far from quadratic"
  else print "**Users scale worse than linear**" }')
findings+="- $scaling_word: each extra user costs about $per_user_low µs between 10 and 100 users and $per_user_high µs between 100 and 1000 (ratio $scaling_ratio; linear work gives about 1, quadratic about 11). Computed from the fastest sample of each \`users/<n>\` case."$'\n'

# --- BENCHMARKS.md ------------------------------------------------------------------------------
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
commit=$(git rev-parse --short HEAD)
dirty=""
git diff --quiet HEAD -- src templates profiles Cargo.toml Cargo.lock benches 2>/dev/null || dirty=" (with uncommitted changes in src/templates/profiles/benches)"

cat >"$out" <<EOF
# Benchmarks

Generated by \`scripts/bench.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC') from commit \`$commit\`$dirty. Every
figure below is from that one run; run the script again to regenerate this file (issue 9).

## Machine

| | |
|---|---|
| CPUs (\`nproc\`) | $(nproc) |
| CPU model | $cpu |
| OS | $(awk -F= '/^PRETTY_NAME=/ { gsub(/"/, "", $2); print $2 }' /etc/os-release), kernel $(uname -r) |
| rustc | $(rustc --version) |
| hyperfine | $hyperfine_version |
| load average (1/5/15 min) | before: $load_before; after: $load_after |

This is a shared machine; other builds and tests may run at the same time. 1-minute load before the
run ${load_before%% *}, after it ${load_after%% *}, on $(nproc) CPUs (the benchmarks themselves use one).
A case disturbed by other load shows it in a wide IQR and range; its median is the figure to read.

## Findings

$findings
$vm_note

## Method

- **Render, in process** (\`cargo bench --bench render\`, [criterion](https://docs.rs/criterion), release
  profile): \`phanes::compile::compile\` with a \`Request\`, then \`phanes::targets::render_all\` (every
  artifact: setup.sh, user-data.yaml, packer/, manifest.json, bundle.tar.gz, SHA256SUMS) in memory,
  without writing files. Each case reads an explicit config file from a private temporary folder.
  - \`compile_render/<profile>\`: each built-in profile with the default config (\`{}\`).
  - \`compile_render/all-modules\`: the minimal profile plus every module of \`phanes::modules::ALL\`
    (\`--modules $all_modules ${all_sets[*]}\`; caddy moves off 80/443, which nginx takes).
  - \`stages/compile\`, \`stages/render_all\`: the all-modules case split into its two calls.
  - \`environment/parse\`: \`phanes::render::environment()\` alone (loading and parsing the templates).
  - \`users/<n>\`: the minimal profile with n entries in \`user.users\` (one SSH key, one group each).
  - Figures are per iteration. *median* is criterion's estimate with its 95% confidence interval;
    *IQR* and *range* are the 25th–75th percentile and min–max of the per-iteration time of
    criterion's samples (each sample is many iterations).
- **Render, process wall time** (hyperfine $runs runs after 3 warm-ups, \`-N\`: no shell in between):
  \`phanes render --out DIR\` of the largest built-in profile (by setup.sh size: $largest) and of the
  all-modules profile, start to exit, writing every artifact (each to a temporary name, all renamed into place once all are written;
  no fsync), and, for comparison, the largest profile with setup.sh to stdout (no files). The 50 ms target applies to the \`--out\` rows.
- **Sizes**: the artifacts of \`phanes render --out\`, with the default config. setup.sh is the shipped
  bundle (comments, indentation and unreached functions left out; see src/bundle/shrink.rs). *gzip* is
  \`gzip -9 -n\` of setup.sh. *user-data.yaml* is what Hetzner and DigitalOcean get: the bundle as
  gz+b64 inside the \`#cloud-config\` when that is smaller, so about 4/3 of the gzip plus the YAML
  around. *user-data.yaml.gz* is what \`--provider aws\` writes instead: the whole \`#cloud-config\`
  without comments, with the bundle minified (no comments, short internal names: \`shrink::minify\`)
  as plain text, gzip-compressed (Zopfli) as one file, which cloud-init decompresses.
  *fits* runs \`phanes render --format cloud-init --provider P\` and reports its exit status: the
  limit is checked on the file as submitted (Hetzner 32 KiB, DigitalOcean 64 KiB, AWS 16 KiB).
  *with --bundle-url* is the user-data.yaml of \`--provider aws --bundle-url URL\`: no bundle inside,
  only the command that downloads setup.sh at first boot and runs it if its sha256 is the rendered one.

## Render time, in process (criterion)

| benchmark | median | median 95% CI | IQR | range | samples |
|---|---|---|---|---|---|
${crit_rows}
Template environment alone: $(fmt_ns "$env_ns") of the $(fmt_ns "$all_ns") the all-modules render takes.
Scaling with users (fastest samples): $per_user_low µs per user from 10 to 100 users, $per_user_high µs per
user from 100 to 1000 (ratio $scaling_ratio; linear work gives about 1, quadratic work about 11). The
1-user case is in the table for reference; its difference to 10 users is too small to tell from noise.
compile vs render_all (all-modules medians): $(fmt_ns "$(crit_median stages compile)") vs $(fmt_ns "$(crit_median stages render_all)").

## Render time, process wall time (hyperfine)

| command | median (ms) | std dev (ms) | range (ms) | user CPU (ms, mean) | system CPU (ms, mean) | runs |
|---|---|---|---|---|---|---|
${hf_rows}
## Sizes (bytes)

| profile | setup.sh | setup.sh gzip -9 | user-data.yaml (Hetzner, DigitalOcean) | user-data.yaml.gz (AWS) | fits Hetzner 32 KiB | fits DigitalOcean 64 KiB | fits AWS 16 KiB | user-data.yaml with --bundle-url (AWS) | fits AWS 16 KiB with --bundle-url |
|---|---|---|---|---|---|---|---|---|---|
${size_rows}${vm_block}
EOF
echo "wrote $out" >&2
