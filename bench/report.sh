#!/usr/bin/env bash
# Turn a run's raw results (DIR/latest.jsonl, DIR/serialize.json) into DIR/table.md and
# DIR/downtime.png. Needs python3 and gnuplot (Debian: python3, gnuplot-nox; installed if missing).
set -euo pipefail
DIR=${1:-bench/results}
for tool in python3:python3 gnuplot:gnuplot-nox; do
  command -v "${tool%%:*}" >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${tool#*:}" >/dev/null
done
python3 - "$DIR" <<'PY'
import json, sys, os
d = sys.argv[1]
rows = [json.loads(l) for l in open(os.path.join(d, "latest.jsonl")) if l.strip()]
ser = json.load(open(os.path.join(d, "serialize.json")))
machine = open(os.path.join(d, "machine.txt")).read().strip()
out = ["# Latest benchmark results", "", machine, "",
       "Reproduce: `bench/run-all.sh` (as root). Times are medians unless marked; ratios are",
       "measured side by side in this run.", ""]
allDown = [r for r in rows if "downtime" in r and "probe" not in r]
down = [r for r in allDown if not r.get("touch")]  # the plot: back-to-back re-execs
out += ["## Re-exec downtime", "",
        "Between re-execs: *quiet* = nothing happens (jobs stay encoded since the restore and are copied",
        "as bytes); *touched* = a `status NAME` request for every job before each re-exec (each decodes its",
        "job, and all are encoded again in the window). *first* = the first re-exec after the start. batond",
        "runs with `--idle-encode-ms 1000`: RSS *at rest* is taken once the idle encoding holds every job and",
        "the pass after the harness's last request has run (before the first re-exec), RSS *as started*",
        "when the last job runs.", "",
        "| jobs | in flight | between | first | downtime median | p90 | max | exec floor (same batond) | /bin/true | downtime / floor | downtime / true | serialize | exec | load | restore | rearm | preflight (not downtime) | RSS as started | RSS at rest | RSS after the re-execs | snapshot |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
for r in allDown:
    u = lambda k, f="median_us": r[k][f]
    out.append(f"| {r['jobs']} | {r['inflight']} | {'touched' if r.get('touch') else 'quiet'} | {r.get('first_us', '-')} us | {u('downtime')} us | {u('downtime','p90_us')} us | {u('downtime','max_us')} us | "
               f"{u('floor')} us | {u('bin_true')} us | {r['ratio_floor']:.2f}x | {r['ratio_true']:.2f}x | {u('serialize')} us | "
               f"{u('exec')} us | {u('load')} us | {u('restore')} us | {u('rearm')} us | {u('preflight')} us | "
               f"{r['rss_kb']/1024:.1f} MB | {r.get('rss_rest_kb', -1024)/1024:.1f} MB | {r.get('rss_after_kb', 0)/1024:.1f} MB | {r['snapshot_bytes']} B |")
probes = [r for r in rows if "probe" in r]
if probes:
    out += ["", "## Seen from outside (100 jobs)", "", "| probe | without re-execs | with re-execs |", "|---|---:|---:|"]
    names = {"status": "longest gap between status answers", "reap": "longest child exit -> reap delay"}
    for r in probes:
        out.append(f"| {names[r['probe']]} | {r['probe_quiet_us']} us | {r['probe_reexec_us']} us |")
spawn = [r for r in rows if "spawn_tasks" in r]
for r in spawn:
    out += ["", f"## Spawn throughput ({r['spawn_tasks']} tasks, exec /bin/true)", "",
            "| | jobs/s | vs bare loop |", "|---|---:|---:|",
            f"| bare fork+exec+waitpid loop | {r['bare_per_s']:.0f} | 1.00x |",
            f"| batond, console none | {r['batond_none_per_s']:.0f} | {r['ratio_none']:.2f}x |",
            f"| batond, console log | {r['batond_log_per_s']:.0f} | {r['ratio_log']:.2f}x |"]
bench = {b["name"]: b for b in ser["benchmarks"]}
def ms(name): 
    b = bench.get(name); 
    return None if not b else (b["real_time"] if b["time_unit"] == "ms" else b["real_time"] / 1e6)
out += ["", "## Serialization (encode + decode of the whole state)", "",
        "| jobs | snapshot encode | decode | encode+decode | bytes/job | JSON encode+decode (Upstart-style baseline) | JSON bytes/job | speed-up |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|"]
for n in (10, 100, 1000, 10000, 100000):
    e, dc, ed, js = ms(f"Encode/{n}"), ms(f"Decode/{n}"), ms(f"EncodeDecode/{n}"), ms(f"JsonEncodeDecode/{n}")
    if ed is None: continue
    bpj = bench[f"EncodeDecode/{n}"].get("bytes_per_job", 0)
    jb = bench.get(f"JsonEncodeDecode/{n}", {}).get("bytes_per_job", 0)
    out.append(f"| {n} | {e:.3f} ms | {dc:.3f} ms | {ed:.3f} ms | {bpj:.0f} | " + (f"{js:.2f} ms | {jb:.0f} | {js/ed:.1f}x |" if js else "- | - | - |"))
sd = [r for r in rows if "systemd_median_us" in r]
if sd:
    out += ["", "## Against systemd 252 `systemctl --user daemon-reexec`", "",
            "| units/jobs | systemd median | baton median | systemd / baton |", "|---:|---:|---:|---:|"]
    for r in sd:
        out.append(f"| {r['n']} | {r['systemd_median_us']} us | {r['baton_median_us']} us | {r['ratio']:.0f}x |")
open(os.path.join(d, "table.md"), "w").write("\n".join(out) + "\n")
with open(os.path.join(d, "downtime.dat"), "w") as f:
    f.write("# jobs downtime_us floor_us true_us\n")
    for r in down:
        f.write(f"{max(r['jobs'],1)} {r['downtime']['median_us']} {r['floor']['median_us']} {r['bin_true']['median_us']}\n")
with open(os.path.join(d, "systemd.dat"), "w") as f:
    f.write("# units systemd_us\n")
    for r in sd: f.write(f"{max(r['n'],1)} {r['systemd_median_us']}\n")
print("\n".join(out))
PY
gnuplot <<GP
set terminal pngcairo size 900,560 noenhanced
set output "$DIR/downtime.png"
set title "Re-exec downtime vs jobs (medians; jobs=0 plotted at 1)"
set logscale xy
set xlabel "running jobs (10% more held in flight)"
set ylabel "microseconds"
set key left top
set grid
plot "$DIR/downtime.dat" using 1:2 with linespoints title "baton downtime", \
     "$DIR/downtime.dat" using 1:3 with linespoints title "exec floor (same batond)", \
     "$DIR/downtime.dat" using 1:4 with linespoints title "exec /bin/true", \
     "$DIR/systemd.dat" using 1:2 with linespoints title "systemd --user daemon-reexec"
GP
echo "wrote $DIR/table.md and $DIR/downtime.png"
