"""The tables of scripts/bench: one row per figure, with its target, whether it holds and OpenSSH's floor (#6, #11, #14)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from benchkit import REFERENCE, REFERENCE_FS, Sample

if TYPE_CHECKING:
    from bench import Bench

RV = "rvssh"
REF = f"runicorn {REFERENCE}"
REF_FS = f"runicorn {REFERENCE_FS}"
MB = 1024.0


@dataclass(frozen=True)
class Figure:
    """One timed figure: where its samples are, its target and the floor OpenSSH sets for it."""

    key: str
    label: str
    reference: str | None
    target: str
    holds: Callable[[Sample, Sample | None, "Bench"], bool] | None
    floor: Callable[["Bench"], str] = lambda bench: ""
    higher_is_better: bool = False
    spread: str = "p90"


def result(bench: "Bench", key: str, server: str = RV) -> Sample | None:
    sample = bench.results.get(key, {}).get(server)
    return sample if sample is not None and sample.values else None


def median_of(bench: "Bench", key: str, server: str = RV) -> float:
    sample = result(bench, key, server)
    return sample.median if sample is not None else math.nan


def limit(bench: "Bench", key: str) -> float:
    sample = bench.limits.get(key)
    return sample.median if sample is not None and sample.values else math.nan


def ms(value: float) -> str:
    if math.isnan(value):
        return "?"
    return f"{value:,.0f} ms" if value >= 100 else f"{value:.1f} ms"


def rate(value: float) -> str:
    return "?" if math.isnan(value) else f"{value:,.0f} MB/s"


def failures_in(sample: Sample) -> int:
    head = sample.note.split(" failed")[0]
    return int(head) if head.isdigit() else 0


FIGURES: list[Figure] = [
    Figure("connect", "cold connect (after disconnect)", REFERENCE, "≤ reference",
           lambda rv, ref, b: ref is not None and rv.median <= ref.median,
           lambda b: f"master start {ms(limit(b, 'master_start'))}; bare `ssh true` {ms(limit(b, 'login'))}"),
    Figure("connect_live", "connect to a live connection", REFERENCE, "≤ 3 ms",
           lambda rv, ref, b: rv.median <= 3, lambda b: f"one `ssh -O check` {ms(limit(b, 'mux_check'))}"),
    Figure("conda", "conda-envs on a fresh connection", REFERENCE, "≤ 60 ms",
           lambda rv, ref, b: rv.median <= 60,
           lambda b: f"first session {ms(limit(b, 'mux_first'))} + the program {ms(limit(b, 'probe_envs'))}"),
    Figure("conda_again", "conda-envs again on the same connection", REFERENCE, "≤ 3 ms",
           lambda rv, ref, b: rv.median <= 3),
    Figure("config", "config, env with runicorn, fresh connection", REFERENCE, "≤ 100 ms",
           lambda rv, ref, b: rv.median <= 100,
           lambda b: f"first session {ms(limit(b, 'mux_first'))} + the program {ms(limit(b, 'probe_config'))}"),
    Figure("config_system", "(context) config of rvssh's own `system` (no runicorn), fresh connection", None, "",
           None),
    Figure("fslist", "fs/list, 2,000 files", REFERENCE_FS, "≤ 30 ms and ≥ 4× the reference",
           lambda rv, ref, b: rv.median <= 30 and ref is not None and ref.median / rv.median >= 4,
           lambda b: f"`true` over a master {ms(limit(b, 'mux_true'))} + the program {ms(limit(b, 'probe_fslist'))}"),
    Figure("pconfig", "10 parallel config calls on a fresh connection, wall", REFERENCE, "≤ 500 ms",
           lambda rv, ref, b: rv.median <= 500 and failures_in(rv) == 0,
           lambda b: f"`true` over a master {ms(limit(b, 'mux_true'))} each"),
    Figure("pconfig_refresh", "(context) 10 parallel config calls with `refresh=true`, wall", None, "", None),
    Figure("pfslist", "50 parallel fs/list on one connection, wall", REFERENCE_FS, "0 failures, ≤ 1.5 s",
           lambda rv, ref, b: failures_in(rv) == 0 and rv.median <= 1500, lambda b: "sshd MaxSessions 10"),
    Figure("viewer", "viewer/start → ready", REFERENCE, "≤ viewer boot + 150 ms",
           lambda rv, ref, b: rv.median <= limit(b, "viewer_boot") + 150,
           lambda b: f"viewer boot alone {ms(limit(b, 'viewer_boot'))}"),
    Figure("viewer_stop", "viewer/stop (answered)", REFERENCE, "≤ 100 ms", lambda rv, ref, b: rv.median <= 100,
           lambda b: f"`true` over a master {ms(limit(b, 'mux_true'))}"),
    Figure("health", "`/api/health` through the tunnel", REFERENCE, "≤ 2 ms", lambda rv, ref, b: rv.median <= 2,
           lambda b: f"direct {ms(limit(b, 'direct_health'))}; raw `ssh -L` {ms(limit(b, 'raw_health'))}"),
    Figure("asset", "1.1 MB UI asset through the tunnel", REFERENCE, "≤ 10 ms", lambda rv, ref, b: rv.median <= 10,
           lambda b: f"direct {ms(limit(b, 'direct_asset'))}; raw `ssh -L` {ms(limit(b, 'raw_asset'))}"),
    Figure("big", "200 MB through the tunnel", REFERENCE, "≥ 90 % of direct and ≥ 1.2× the reference",
           lambda rv, ref, b: ref is not None and rv.median >= 0.9 * limit(b, "direct_big")
           and rv.median >= 1.2 * ref.median,
           lambda b: f"direct {rate(limit(b, 'direct_big'))}; raw `ssh -L` {rate(limit(b, 'raw_big'))} "
                     f"(AES-GCM {rate(limit(b, 'raw_big_aes'))})",
           higher_is_better=True),
    Figure("during", "viewer/sessions while a config call runs", REFERENCE, "≤ 20 ms",
           lambda rv, ref, b: rv.median <= 20),
    Figure("rps", "viewer/sessions req/s, 8 client threads", REFERENCE, "≥ 0.9 × the server's own `/api/health`",
           lambda rv, ref, b: rv.median >= 0.9 * median_of(b, "rps_health"),
           lambda b: f"`/api/health` of the same server {median_of(b, 'rps_health'):,.0f} req/s",
           higher_is_better=True),
    Figure("rps_health", "(context) `/api/health` req/s, 8 client threads", REFERENCE, "", None,
           higher_is_better=True),
    Figure("ui_flow", "the Runicorn UI's Remote flow: API time of its 22 calls", REFERENCE, "≤ 3 s",
           lambda rv, ref, b: rv.median <= 3000),
]


def fmt(value: float, unit: str) -> str:
    if math.isnan(value):
        return "–"
    if unit == "ms":
        return ms(value)
    if unit == "s":
        return f"{value:.2f} s"
    return f"{value:,.0f} {unit}"


def yes_no(held: bool | None) -> str:
    return "" if held is None else ("yes" if held else "**no**")


def figure_rows(bench: "Bench") -> list[str]:
    rows = []
    for figure in FIGURES:
        rv = result(bench, figure.key)
        ref_name = {REFERENCE: REF, REFERENCE_FS: REF_FS}.get(figure.reference or "", "")
        ref = result(bench, figure.key, ref_name) if ref_name else None
        if rv is None and ref is None:
            continue
        unit = (rv or ref).unit  # type: ignore[union-attr]
        ratio = ""
        if rv is not None and ref is not None:
            value = rv.median / ref.median if figure.higher_is_better else ref.median / rv.median
            ratio = f"{value:,.1f}×"
        held = figure.holds(rv, ref, bench) if figure.holds is not None and rv is not None else None
        notes = "; ".join(note for note in ((rv.note if rv else ""), (f"ref: {ref.note}" if ref and ref.note else ""))
                          if note)
        rows.append(
            f"| {figure.label}{f' ({notes})' if notes else ''} | {rv.n if rv else '–'}/{ref.n if ref else '–'} | "
            f"{fmt(rv.median, unit) if rv else '–'} | {fmt(rv.p90, unit) if rv else '–'} | "
            f"{fmt(ref.median, unit) if ref else '–'}{f' ({figure.reference})' if ref and figure.reference != REFERENCE else ''} | "
            f"{ratio} | {figure.target} | {yes_no(held)} | {figure.floor(bench)} |")
    return rows + resource_rows(bench) + scale_rows(bench) + link_rows(bench) + soak_rows(bench)


def resource_rows(bench: "Bench") -> list[str]:
    rv, ref = bench.resources.get(RV, {}), bench.resources.get(REF, {})
    if not rv:
        return []

    def both(key: str) -> str:
        return f"{rv.get(f'rss_{key}_kb', 0) / MB:.0f} MB RSS, {rv.get(f'pss_{key}_kb', 0) / MB:.0f} MB PSS"

    idle_held = rv.get("pss_idle_kb", math.inf) / MB <= 60
    peak_held = rv.get("pss_peak_kb", math.inf) / MB <= 100
    ref_text = lambda key: f"{ref.get(f'rss_{key}_kb', 0) / MB:.0f} MB RSS" if ref else "–"  # noqa: E731
    return [
        f"| API server tree, idle (arbiter + worker) | | {both('idle')} | | {ref_text('idle')} | | ≤ 60 MB | "
        f"{yes_no(idle_held)} | |",
        f"| API server tree, peak (with its ssh children) | | {both('peak')} | | {ref_text('peak')} | | ≤ 100 MB | "
        f"{yes_no(peak_held)} | |",
    ]


def scale_rows(bench: "Bench") -> list[str]:
    scale = bench.extra.get("scale", {})
    rv, ref = scale.get(RV), scale.get(REF)
    if not rv:
        return []
    rows = []
    for read in ("sessions", "status", "viewer/sessions"):
        mine, theirs = rv["reads"].get(read), (ref or {}).get("reads", {}).get(read)
        rows.append(
            f"| scale: `{read}` with {rv['connections']} connections and {rv['viewers']} viewers (median; p99) | "
            f"{mine.n}/{theirs.n if theirs else '–'} | {ms(mine.median)} | p99 {ms(mine.p99)} | "
            f"{f'{ms(theirs.median)}; p99 {ms(theirs.p99)}' if theirs else '–'} | | ≤ 5 ms median | "
            f"{yes_no(mine.median <= 5)} | |")
    per = rv.get("mb_per_connection", math.nan)
    rows.append(f"| scale: memory per connection (its master, and the server's growth) | | {per:.1f} MB | | "
                f"{(ref or {}).get('mb_per_connection', math.nan):.1f} MB | | ≤ 6 MB | {yes_no(per <= 6)} | |")
    before, during, after = rv["fds"]
    rows.append(f"| scale: open fds of the server tree before / with everything / after stopping it all | | "
                f"{before} / {during} / {after} | | "
                f"{'/'.join(str(x) for x in ref['fds']) if ref else '–'} | | no growth | {yes_no(after <= before)} | |")
    ref_start = f"{ref['start_s']:.1f} s" if ref else "–"
    rows.append(f"| scale: {rv['viewers']} viewers started in parallel, wall | | {rv['start_s']:.1f} s | | {ref_start}"
                f" | | | | viewer boot alone {ms(limit(bench, 'viewer_boot'))} |")
    return rows


def link_rows(bench: "Bench") -> list[str]:
    links = bench.extra.get("links", {})
    rv, ref = links.get(RV), links.get(REF)
    if not rv:
        return []
    reads: Sample = rv["reads"]
    ref_reads: Sample | None = (ref or {}).get("reads")
    back, ref_back = rv.get("back_s"), (ref or {}).get("back_s")
    return [
        f"| link frozen: reads (sessions, status, viewer/sessions) p99 | {reads.n}/{ref_reads.n if ref_reads else '–'} "
        f"| {ms(reads.p99)} | median {ms(reads.median)} | "
        f"{f'p99 {ms(ref_reads.p99)}' if ref_reads else '–'} | | ≤ 50 ms | "
        f"{yes_no(reads.p99 <= 50)} | |",
        f"| link down and up: from the link's return to the tunnel serving | | "
        f"{'never' if back is None else f'{back:.2f} s'} | | "
        f"{'never (within the limit)' if ref and ref_back is None else (f'{ref_back:.2f} s' if ref_back is not None else '–')}"
        f" | | ≤ 5 s | {yes_no(back is not None and back <= 5)} | |",
    ]


def soak_rows(bench: "Bench") -> list[str]:
    soak = bench.extra.get("soak")
    if not soak:
        return []
    rows = []
    for name, verdict in soak["verdicts"].items():
        rows.append(f"| soak, {soak['minutes']:g} min of the UI's polling: {name} | | {verdict['text']} | | "
                    f"{soak['verdicts_ref'].get(name, {}).get('text', '–')} | | flat, nothing leaks | "
                    f"{yes_no(verdict['flat'])} | |")
    return rows


def render(bench: "Bench", elapsed: float, command: str) -> str:
    lines = [f"Run: `{command}` on {time.strftime('%Y-%m-%d')}, {elapsed:.0f} s wall.", "", "| | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in bench.versions.items()]
    lines += [
        "",
        "Medians and p90 over n runs after one warm-up (n is rvssh/reference); ratio = reference ÷ rvssh for "
        "times, rvssh ÷ reference for rates (> 1: rvssh is ahead). config and viewer/start use the environment "
        "that holds runicorn, the same interpreter for both: "
        + ", ".join(f"{name} `conda_env={env}`" for name, env in bench.runicorn_env.items())
        + f", runicorn {REFERENCE} `system` (the first python3 on PATH, the runicorn venv). Memory: RSS counts "
        "the pages a worker shares with the arbiter it was forked from twice; PSS divides shared pages among "
        "their sharers, so the tree's PSS is what it costs the machine (the target is read on it; the soak judges RSS, which other processes do not move).",
        "",
        "| figure | n | rvssh median | rvssh p90 | reference | ratio | target | holds | OpenSSH floor here |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines += figure_rows(bench)
    lines += counts_table(bench) + cpu_table(bench) + resources_table(bench) + limits_table(bench)
    lines += ui_table(bench) + soak_table(bench)
    if bench.notes:
        lines += [""] + [f"- {note}" for note in bench.notes]
    return "\n".join(lines) + "\n"


def counts_table(bench: "Bench") -> list[str]:
    if not bench.counts:
        return []
    lines = ["", "Per operation, from one run of each (ssh processes started locally, counted by a wrapper; "
                 "logins and sessions from the test sshd's log):", "",
             "| operation | rvssh: ssh processes / logins / sessions | reference: ssh processes / logins / sessions |",
             "|---|---|---|"]
    labels = {"connect": "connect (cold)", "conda": "conda-envs (fresh connection; rvssh: the connect's prefetch)",
              "config": "config (env with runicorn)", "fslist": "fs/list", "viewer_start": "viewer/start",
              "viewer_sessions": "viewer/sessions (1 viewer)", "viewer_stop": "viewer/stop",
              "disconnect": "disconnect"}
    for op, label in labels.items():
        per = bench.counts.get(op, {})

        def cell(name: str) -> str:
            counted = per.get(name)
            return f"{counted['ssh_processes']} / {counted['logins']} / {counted['sessions']}" if counted else "–"

        ref_cell = cell(REF_FS if op == "fslist" else REF) + (f" ({REFERENCE_FS})" if op == "fslist" else "")
        lines.append(f"| {label} | {cell(RV)} | {ref_cell} |")
    return lines


def cpu_table(bench: "Bench") -> list[str]:
    if not bench.cpu_ops:
        return []
    lines = ["", "CPU per operation: user + system seconds of the API server's process tree (its reaped children, "
                 "the ssh clients, included; rvssh's masters and sshd are not), divided by the operations:", "",
             "| operation | rvssh | reference | ratio |", "|---|---|---|---|"]
    for label, per in bench.cpu_ops.items():
        mine = per.get(RV, math.nan)
        theirs = per.get(REF_FS if label.startswith("fs/list") else REF, math.nan)
        ratio = f"{theirs / mine:,.1f}×" if mine and not math.isnan(theirs) and mine > 0 else ""
        lines.append(f"| {label} | {mine:.1f} ms | {theirs:.1f} ms{' (0.6.0)' if label.startswith('fs/list') else ''} "
                     f"| {ratio} |")
    return lines


def resources_table(bench: "Bench") -> list[str]:
    lines = ["", "Memory and CPU of the API server processes (the server and its children; rvssh's masters are "
                 "daemons of their own, counted per connection):", "",
             "| server | RSS idle | PSS idle | RSS peak | PSS peak | RSS end | CPU over the timing pass | "
             "per connection | per viewer tunnel |", "|---|---|---|---|---|---|---|---|---|"]
    for name, res in bench.resources.items():
        per_conn = per_tunnel = "–"
        if "master_rss_kb" in res:
            per_conn = f"{res['master_rss_kb'] / MB:.1f} MB (the master's RSS)"
            per_tunnel = "0 (a forward on the master)"
        elif name == REF:
            per_conn = "no process (a new ssh login per command)"
            per_tunnel = f"{res.get('tunnel_rss_kb', 0) / MB:.1f} MB ({res.get('tunnel_processes', 0)} `ssh -N -L`)"
        elif name == REF_FS:
            per_conn = "in process (paramiko)"
        kb = lambda key: f"{res.get(key, 0) / MB:.1f} MB"  # noqa: E731
        lines.append(f"| {name} | {kb('rss_idle_kb')} | {kb('pss_idle_kb')} | {kb('rss_peak_kb')} | "
                     f"{kb('pss_peak_kb')} | {kb('rss_end_kb')} | {res.get('cpu_s', 0):.1f} s | {per_conn} | "
                     f"{per_tunnel} |")
    return lines


LIMIT_LABELS = {
    "login": "bare `ssh ... true` (a new login)",
    "master_start": "`ssh -f -N -M` until it returns (a master)",
    "mux_first": "`true` over a master, its first session",
    "mux_true": "`true` over a master",
    "mux_python": "`python3 -c pass` over a master",
    "mux_check": "`ssh -O check`",
    "probe_envs": "conda-envs' program run on the server, no ssh",
    "probe_config": "config's program (env with runicorn, import remembered) run on the server, no ssh",
    "probe_fslist": "fs/list's program (2,000 files) run on the server, no ssh",
    "viewer_boot": "runicorn viewer boot to `/api/health`, no ssh",
    "direct_health": "`/api/health`, direct (no tunnel)",
    "raw_health": "`/api/health` through a raw `ssh -N -L`",
    "direct_asset": "1.1 MB asset, direct",
    "raw_asset": "1.1 MB asset through a raw `ssh -N -L`",
    "direct_big": "200 MB file, direct",
    "raw_big": "200 MB file through a raw `ssh -N -L` (OpenSSH's default cipher, chacha20-poly1305)",
    "raw_big_aes": "200 MB file through a raw `ssh -N -L -c aes128-gcm@openssh.com`",
}


def limits_table(bench: "Bench") -> list[str]:
    lines = ["", "Physical limits measured on the same machine and sshd:", "", "| what | n | median | p90 |",
             "|---|---|---|---|"]
    for key, label in LIMIT_LABELS.items():
        sample = bench.limits.get(key)
        if sample and sample.values:
            lines.append(f"| {label} | {sample.n} | {fmt(sample.median, sample.unit)} | {fmt(sample.p90, sample.unit)} |")
    return lines


def ui_table(bench: "Bench") -> list[str]:
    if not bench.ui_calls:
        return []
    lines = ["", "The UI flow's slowest calls (mean per flow):", "", "| server | slowest calls |", "|---|---|"]
    for name, calls in bench.ui_calls.items():
        lines.append(f"| {name} | {'; '.join(f'{call} {ms(mean)}' for call, mean in calls)} |")
    return lines


def soak_table(bench: "Bench") -> list[str]:
    soak = bench.extra.get("soak")
    if not soak:
        return []
    lines = ["", f"Soak: {soak['minutes']:g} minutes of the Runicorn UI's polling pattern ({soak['pattern']}), "
                 "sampled every 30 s; first sample after the warm-up minute / last / largest:", "",
             "| server | RSS (MB) | PSS (MB) | open fds | child processes | masters (rvssh) | requests | failed |",
             "|---|---|---|---|---|---|---|---|"]
    for name, summary in soak["summaries"].items():
        lines.append(f"| {name} | {summary['rss']} | {summary['pss']} | {summary['fds']} | {summary['children']} | "
                     f"{summary.get('masters', '–')} | {summary['requests']} | {summary['failed']} |")
    return lines


def as_json(value: Any) -> Any:
    """Return the results as JSON-able values (Samples as their fields)."""
    if isinstance(value, Sample):
        return vars(value)
    if isinstance(value, dict):
        return {str(key): as_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [as_json(item) for item in value]
    return value
