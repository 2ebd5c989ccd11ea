"""The benchmark: both consume modes on the running platform, the raw limit, billing's day, a report."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform as pyplatform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from shared.ops.platform import ROOT, Platform, ServiceProcess, local_endpoints
from shared.trust import load_registry
from tests.bench import billing_day, raw_limit, trust_cost
from tests.bench.workload import Driver, Result, customers

REPORT_DIR = ROOT / "reports" / "bench"
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Options:
    """What to run."""

    smoke: bool
    duration_s: float
    baseline_duration_s: float
    warmup_s: float
    customers: int
    window: int
    accounts: int
    raw_payments: int
    seed: int
    out_dir: Path
    profile: list[str]
    only_batch: bool
    #: Launch both modes' platforms at once (the smoke run; see ``run_both``).
    overlap: bool = False

    @classmethod
    def parse(cls, argv: Sequence[str] | None) -> Options:
        """``python -m tests.bench [--smoke] [--duration S] [--accounts N] [--seed N]``."""
        p = argparse.ArgumentParser(prog="python -m tests.bench", description="aqsha performance benchmark")
        p.add_argument("--smoke", action="store_true", help="a short run (well under a minute)")
        p.add_argument("--duration", type=float, help="measured seconds per consume mode (default 60)")
        p.add_argument("--baseline-duration", type=float, help="measured seconds of the baseline")
        p.add_argument("--accounts", type=int, help="Red accounts of the billing day (default 200 000)")
        p.add_argument("--customers", type=int, help="customers of the payment mix")
        p.add_argument("--window", type=int, help="payments in flight at most")
        p.add_argument("--raw-payments", type=int, help="payments of the raw-limit script")
        p.add_argument("--seed", type=int, default=42)
        p.add_argument("--out", type=Path, default=REPORT_DIR)
        p.add_argument("--profile", action="append", default=[], help="run SERVICE under pyinstrument")
        p.add_argument("--only-batch", action="store_true", help="skip the baseline, raw limit and billing")
        a = p.parse_args(argv)
        duration = a.duration or (3.0 if a.smoke else 60.0)
        return cls(
            smoke=a.smoke,
            duration_s=duration,
            baseline_duration_s=a.baseline_duration or (2.0 if a.smoke else min(duration, 30.0)),
            warmup_s=0.5 if a.smoke else 5.0,
            customers=a.customers or (40 if a.smoke else 3_000),
            window=a.window or (40 if a.smoke else 400),
            accounts=a.accounts or (1_000 if a.smoke else 200_000),
            raw_payments=a.raw_payments or (1_000 if a.smoke else 30_000),
            seed=a.seed,
            out_dir=a.out,
            profile=a.profile,
            only_batch=a.only_batch,
            overlap=a.smoke,
        )


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14 and 15)


def _all_cpu() -> dict[int, tuple[str, float]]:
    """pid -> (command name, CPU seconds) for every process on the machine."""
    out: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        comm = text[text.index("(") + 1 : text.rindex(")")]
        fields = text.rsplit(")", 1)[1].split()
        out[int(entry.name)] = (comm, (int(fields[11]) + int(fields[12])) / CLK_TCK)
    return out


def machine_cpu(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]], services: dict[str, int]
) -> dict[str, float]:
    """CPU seconds per part of the platform between two snapshots (where the machine's time went)."""
    names = {pid: name for name, pid in services.items()}
    groups = {"postgres": "postgres", "tansu": "kafka (tansu)", "redis-server": "redis"}
    out: dict[str, float] = {}
    for pid, (comm, cpu) in after.items():
        spent = cpu - before.get(pid, (comm, 0.0))[1]
        if spent <= 0:
            continue
        if pid in names:
            group = names[pid]
        elif pid == os.getpid():
            group = "bench driver + gateway simulator"
        else:
            group = groups.get(comm, "other")
        out[group] = out.get(group, 0.0) + spent
    return {k: round(v, 2) for k, v in sorted(out.items(), key=lambda kv: -kv[1])}


def _hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


class ProfiledProcess(ServiceProcess):
    """A service process run under pyinstrument (``--profile``); the report is written on exit."""

    def start(self) -> None:
        """``python -m pyinstrument -r text -o <run dir>/<name>.profile.txt -m faststream run ...``."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        out = self.log_path.with_suffix(".profile.txt")
        cmd = [sys.executable, "-m", "pyinstrument", "-r", "text", "-o", str(out)]
        cmd += ["-m", "faststream", "run", f"services.{self.name}.app:create_app", "--factory"]
        with self.log_path.open("ab") as log_file:
            self.popen = subprocess.Popen(
                cmd, cwd=ROOT, env=self.env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.starts += 1


@dataclass
class BenchPlatform(Platform):
    """The platform, with chosen services under the profiler."""

    profile: frozenset[str] = frozenset()

    def _process(self, name: str) -> ServiceProcess:
        proc = super()._process(name)
        if name not in self.profile:
            return proc
        return ProfiledProcess(proc.name, proc.env, proc.log_path, proc.http_port)


class ModeRun:
    """One consume mode on its own platform: ``launch`` (start, set up customers), ``measure``, ``close``.

    Each mode has its own database, topics, Redis prefix and run directory, so the smoke benchmark
    can launch both at once (``Options.overlap``) and measure them one after the other.
    """

    def __init__(self, opts: Options, endpoints: Any, mode: str) -> None:
        self.opts = opts
        self.mode = mode
        self.plat = BenchPlatform(
            endpoints,
            database=f"aqsha_bench_{mode}",
            run_dir=ROOT / ".run" / "bench" / mode,
            redis_prefix=f"aqsha:bench:{mode}:",
            topic_suffix=f".bench-{mode}-{os.getpid()}",
            extra_env={"AQSHA_KAFKA_CONSUME_MODE": mode, "AQSHA_LOG_LEVEL": "WARNING"},
            profile=frozenset(opts.profile),
        )
        self.people = customers(opts.customers, opts.seed)
        self.driver: Driver | None = None
        self.pool: asyncpg.Pool | None = None
        self.phases: dict[str, float] = {}
        self.setup_s = 0.0
        self.closed = False
        self._mark = time.monotonic()

    def _phase(self, name: str) -> None:
        now = time.monotonic()
        self.phases[name] = round(now - self._mark, 1)
        self._mark = now

    async def launch(self) -> None:
        """Prepare and start the platform, register and fund the customers, wait until quiet."""
        self._mark = time.monotonic()
        await self.plat.prepare()
        self._phase("prepare")
        await self.plat.start()
        self._phase("start")
        self.pool = await asyncpg.create_pool(self.plat.dsn, min_size=1, max_size=2)
        self.driver = Driver(self.plat, self.opts.seed)
        await self.driver.start()
        t0 = time.monotonic()
        await self.driver.setup(self.people, self.pool)
        await self.plat.quiesce(180, settle_s=0.5)
        self.setup_s = time.monotonic() - t0
        self._phase("setup")

    async def measure(self, duration_s: float) -> dict[str, Any]:
        """Drive the mix for ``duration_s``; the summary of the window."""
        plat, driver, pool, opts = self.plat, self.driver, self.pool, self.opts
        if driver is None or pool is None:
            raise RuntimeError("launch() first")
        self._mark = time.monotonic()
        # The trust boundary's cost is measured on the batch run (production's mode); the records
        # are the same in both modes.
        ends0, since_ms = None, time.time() * 1000
        if self.mode == "batch":
            ends0 = await trust_cost.end_offsets(plat.endpoints.kafka, plat.topic_suffix)
        pids = {name: p.pid for name, p in plat.services.items() if p.pid is not None}
        cpu0 = {name: _cpu_s(pid) for name, pid in pids.items()}
        all0 = _all_cpu()
        result = await driver.run(self.people, duration_s, opts.window, opts.warmup_s)
        cpu1 = {name: _cpu_s(pid) for name, pid in pids.items()}
        all1 = _all_cpu()
        self._phase("load")
        await driver.drain(result, 60)
        memory = {name: _hwm_mb(pid) for name, pid in pids.items()}
        summary = summarise(result, duration_s)
        completed_ids = [f.payment_id for f in result.flights if f.completed is not None and f.payment_id]
        summary["bonus_decisions"] = await _bonus_decisions(pool, result)
        summary["setup_s"] = round(self.setup_s, 1)
        elapsed = result.measured_to - result.started
        done_all = sum(1 for f in result.flights if f.done is not None and f.done <= result.measured_to)
        summary["cpu_s_per_1000_payments"] = {
            name: round((cpu1[name] - cpu0[name]) / max(done_all, 1) * 1000, 2) for name in pids
        }
        summary["cpu_utilisation"] = {name: round((cpu1[name] - cpu0[name]) / elapsed, 2) for name in pids}
        # The whole machine over the same window: services, PostgreSQL, Tansu, Redis, the driver,
        # and anything else running on the machine ("other").
        summary["machine_cpu_s"] = machine_cpu(all0, all1, pids)
        summary["machine_cpu_s_per_1000_payments"] = {
            k: round(v / max(done_all, 1) * 1000, 2) for k, v in summary["machine_cpu_s"].items()
        }
        summary["peak_memory_mb"] = {name: round(v, 1) for name, v in memory.items()}
        summary["completed_with_id"] = len(completed_ids)
        self._phase("drain")
        if ends0 is not None:
            summary["trust"] = await self._trust_cost(ends0, since_ms, result.sent)
            self._phase("trust_cost")
        summary["phases_s"] = self.phases  # "stop" is added by close()
        return summary

    async def _trust_cost(self, before: trust_cost.Offsets, since_ms: float, payments: int) -> dict[str, Any]:
        """Verification and signing cost over the records the window wrote (``trust_cost``)."""
        plat, driver = self.plat, self.driver
        assert driver is not None
        assert driver.keyring is not None
        with contextlib.suppress(TimeoutError):  # the last bonus and notify events of the window
            await plat.quiesce(30, settle_s=0.5)
        after = await trust_cost.end_offsets(plat.endpoints.kafka, plat.topic_suffix)
        records = await trust_cost.read_window(plat.endpoints.kafka, before, after, since_ms)
        return trust_cost.measure(
            records,
            registry=load_registry(plat.settings().trust),
            keyring=driver.keyring,
            suffix=plat.topic_suffix,
            payments=payments,
        )

    async def close(self) -> None:
        """Stop the driver and the platform (draining first); once."""
        if self.closed:
            return
        self.closed = True
        self._mark = time.monotonic()
        if self.driver is not None:
            with contextlib.suppress(Exception):
                await self.driver.stop()
        if self.pool is not None:
            await self.pool.close()
        await self.plat.stop(drain_s=20)
        self._phase("stop")


async def run_mode(opts: Options, endpoints: Any, mode: str, duration_s: float) -> dict[str, Any]:
    """Start the platform in ``mode``, set up customers, drive the mix, measure; stop it."""
    run = ModeRun(opts, endpoints, mode)
    try:
        await run.launch()
        return await run.measure(duration_s)
    finally:
        await run.close()


async def run_both(opts: Options, endpoints: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Batch, then the per-message baseline; with ``opts.overlap`` both are launched at once.

    Overlapping saves one platform start and setup (most of the smoke run's time); the idle
    baseline platform then polls during the batch window, so the full benchmark never overlaps.
    """
    if not opts.overlap:
        batch = await run_mode(opts, endpoints, "batch", opts.duration_s)
        return batch, await run_mode(opts, endpoints, "per_message", opts.baseline_duration_s)
    runs = [ModeRun(opts, endpoints, "batch"), ModeRun(opts, endpoints, "per_message")]
    try:
        await asyncio.gather(*(r.launch() for r in runs))
        batch = await runs[0].measure(opts.duration_s)
        await runs[0].close()
        baseline = await runs[1].measure(opts.baseline_duration_s)
    finally:
        for r in runs:
            await r.close()
    return batch, baseline


async def _bonus_decisions(pool: asyncpg.Pool, result: Result) -> dict[str, int]:
    """Bonus decisions made for the completed payments (bonus decides on every completion)."""
    ids = [f.payment_id for f in result.flights if f.completed is not None]
    deadline = time.monotonic() + 30
    found = 0
    while time.monotonic() < deadline:
        found = int(
            await pool.fetchval(
                "SELECT count(*) FROM bonus.accrual_decisions WHERE payment_id = ANY($1::uuid[])",
                [i for i in ids if i],
            )
        )
        if found >= len([i for i in ids if i]):
            break
        await asyncio.sleep(0.5)
    return {"completed": len(ids), "decided": found}


def summarise(result: Result, duration_s: float) -> dict[str, Any]:
    """Throughput, latency and a per-second timeline of one phase."""
    done = result.done()
    started_in_window = [
        f
        for f in result.flights
        if result.measured_from <= f.started <= result.measured_to and f.done is not None
    ]
    lat = [(f.done - f.started) * 1000 for f in started_in_window if f.done is not None]
    failed: dict[str, int] = {}
    for f in result.flights:
        if f.failed:
            failed[f.failed] = failed.get(f.failed, 0) + 1
    timeline: list[dict[str, float]] = []
    for second in range(int(result.measured_to - result.started) + 1):
        lo = result.started + second
        in_sec = [f for f in result.flights if f.done is not None and lo <= f.done < lo + 1]
        ls = [(f.done - f.started) * 1000 for f in in_sec if f.done is not None]
        timeline.append(
            {"t": second, "payments": len(in_sec), "p50_ms": _pct(ls, 0.5), "p99_ms": _pct(ls, 0.99)}
        )
    kinds: dict[str, int] = {}
    for f in done:
        kinds[f.kind + ("+otp" if f.otp else "")] = kinds.get(f.kind + ("+otp" if f.otp else ""), 0) + 1
    return {
        "payments_per_s": len(done) / duration_s,
        "p50_ms": _pct(lat, 0.50),
        "p95_ms": _pct(lat, 0.95),
        "p99_ms": _pct(lat, 0.99),
        "mean_ms": statistics.fmean(lat) if lat else 0.0,
        "sent": result.sent,
        "done_in_window": len(done),
        "not_done": sum(1 for f in result.flights if f.done is None and not f.failed),
        "failed": failed,
        "mix_done": kinds,
        "duration_s": duration_s,
        "timeline": timeline,
    }


def ratio(a: float, b: float) -> float | None:
    """``a / b`` rounded; None when ``b`` is zero."""
    return round(a / b, 3) if b else None


def machine() -> dict[str, Any]:
    """Where it ran."""
    return {
        "cpus": os.cpu_count(),
        "python": pyplatform.python_version(),
        "platform": pyplatform.platform(),
        "loadavg_at_end": os.getloadavg(),
    }


async def bench(opts: Options) -> dict[str, Any]:
    """Every phase; returns the report."""
    started = time.monotonic()
    endpoints = await asyncio.to_thread(local_endpoints)
    phases: dict[str, float] = {"infrastructure": round(time.monotonic() - started, 1)}
    try:
        mark = time.monotonic()
        if opts.only_batch:
            batch = await run_mode(opts, endpoints, "batch", opts.duration_s)
            print(json.dumps({k: v for k, v in batch.items() if k != "timeline"}, indent=1))
            return {}
        batch, baseline = await run_both(opts, endpoints)
        phases["both modes" + (" (launched together)" if opts.overlap else "")] = round(
            time.monotonic() - mark, 1
        )
        mark = time.monotonic()
        raw = await raw_limit.run(
            endpoints.pg_admin_dsn, endpoints.redis_url, "aqsha_bench_raw", opts.raw_payments
        )
        phases["raw_limit"] = round(time.monotonic() - mark, 1)
        mark = time.monotonic()
        billing = await billing_day.run(endpoints.pg_admin_dsn, "aqsha_bench_billing", opts.accounts)
        phases["billing_day"] = round(time.monotonic() - mark, 1)
    finally:
        await asyncio.to_thread(endpoints.stop)
    report: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(),
        "smoke": opts.smoke,
        "seed": opts.seed,
        "duration_s": opts.duration_s,
        "payments_per_s": round(batch["payments_per_s"], 1),
        "p50_ms": round(batch["p50_ms"], 1),
        "p95_ms": round(batch["p95_ms"], 1),
        "p99_ms": round(batch["p99_ms"], 1),
        "baseline_payments_per_s": round(baseline["payments_per_s"], 1),
        "baseline_p50_ms": round(baseline["p50_ms"], 1),
        "baseline_p95_ms": round(baseline["p95_ms"], 1),
        "baseline_p99_ms": round(baseline["p99_ms"], 1),
        "raw_limit_payments_per_s": round(raw["payments_per_s"], 1),
        "bills_per_s": round(billing.bills_per_s, 1),
        "overdue_per_s": round(billing.overdue_per_s, 1),
        "penalties_per_s": round(billing.penalties_per_s, 1),
        "ratios": {
            "batch_vs_baseline": ratio(batch["payments_per_s"], baseline["payments_per_s"]),
            "batch_vs_raw_limit": ratio(batch["payments_per_s"], raw["payments_per_s"]),
            "baseline_vs_raw_limit": ratio(baseline["payments_per_s"], raw["payments_per_s"]),
            "p99_batch_vs_baseline": ratio(batch["p99_ms"], baseline["p99_ms"]),
        },
        "cpu_s_per_1000_payments": batch["cpu_s_per_1000_payments"],
        # The trust boundary (tests/bench/trust_cost.py): CPU per verification and per signature,
        # verifications one payment causes across every consumer group, and their CPU per payment.
        "verify_us_per_message": batch["trust"]["verify_us_per_message"],
        "sign_us_per_message": batch["trust"]["sign_us_per_message"],
        "verifications_per_payment": batch["trust"]["verifications_per_payment"],
        "verify_cpu_ms_per_payment": batch["trust"]["verify_cpu_ms_per_payment"],
        "trust": batch["trust"],
        "baseline_cpu_s_per_1000_payments": baseline["cpu_s_per_1000_payments"],
        "peak_memory_mb": batch["peak_memory_mb"],
        "baseline_peak_memory_mb": baseline["peak_memory_mb"],
        "billing": {
            "accounts": billing.accounts,
            "bills": billing.bills,
            "bill_day_s": round(billing.bill_day_s, 2),
            "overdue": billing.overdue,
            "overdue_day_s": round(billing.overdue_day_s, 2),
            "penalties": billing.penalties,
            "penalty_day_s": round(billing.penalty_day_s, 2),
            "seed_s": round(billing.seed_s, 1),
        },
        "raw_limit": raw,
        "batch": batch,
        "baseline": baseline,
        "options": {k: str(v) for k, v in vars(opts).items()},
        "machine": machine(),
    }
    report["wall_s"] = round(time.monotonic() - started, 1)
    report["phases_s"] = phases
    return report


def table(r: dict[str, Any]) -> str:
    """The printed table."""
    b, base = r["batch"], r["baseline"]
    rt = r["ratios"]
    rows = [
        ("figure", "batch", "per_message", "raw limit", "batch/base", "batch/raw"),
        (
            "e2e payments/s",
            f"{r['payments_per_s']:.1f}",
            f"{r['baseline_payments_per_s']:.1f}",
            f"{r['raw_limit_payments_per_s']:.1f}",
            f"{rt['batch_vs_baseline']}",
            f"{rt['batch_vs_raw_limit']}",
        ),
        ("p50 ms", f"{r['p50_ms']:.0f}", f"{r['baseline_p50_ms']:.0f}", "", "", ""),
        ("p95 ms", f"{r['p95_ms']:.0f}", f"{r['baseline_p95_ms']:.0f}", "", "", ""),
        (
            "p99 ms",
            f"{r['p99_ms']:.0f}",
            f"{r['baseline_p99_ms']:.0f}",
            "",
            f"{rt['p99_batch_vs_baseline']}",
            "",
        ),
        (
            "done / sent",
            f"{b['done_in_window']}/{b['sent']}",
            f"{base['done_in_window']}/{base['sent']}",
            "",
            "",
            "",
        ),
    ]
    for name in b["cpu_s_per_1000_payments"]:
        rows.append(
            (
                f"CPU s/1000 {name}",
                str(b["cpu_s_per_1000_payments"][name]),
                str(base["cpu_s_per_1000_payments"][name]),
                "",
                "",
                "",
            )
        )
    machine_b = b.get("machine_cpu_s_per_1000_payments", {})
    machine_base = base.get("machine_cpu_s_per_1000_payments", {})
    for name in machine_b:
        if name in b["cpu_s_per_1000_payments"]:
            continue  # a service: already above
        rows.append((f"CPU s/1000 {name}", str(machine_b[name]), str(machine_base.get(name, "")), "", "", ""))
    for name in b["peak_memory_mb"]:
        rows.append(
            (f"peak MB {name}", str(b["peak_memory_mb"][name]), str(base["peak_memory_mb"][name]), "", "", "")
        )
    bill = r["billing"]
    rows += [
        ("bills/s", f"{r['bills_per_s']:.0f}", f"({bill['bills']} bills)", "", "", ""),
        ("overdue records/s", f"{r['overdue_per_s']:.0f}", f"({bill['overdue']})", "", "", ""),
        ("penalties/s", f"{r['penalties_per_s']:.0f}", f"({bill['penalties']})", "", "", ""),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(6)]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def chart(r: dict[str, Any], path: Path) -> None:
    """Throughput and latency over time, both modes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for label, phase in (("batch", r["batch"]), ("per_message", r["baseline"])):
        t = [p["t"] for p in phase["timeline"]]
        top.plot(t, [p["payments"] for p in phase["timeline"]], label=f"{label} payments/s")
        bottom.plot(t, [p["p50_ms"] for p in phase["timeline"]], label=f"{label} p50")
        bottom.plot(t, [p["p99_ms"] for p in phase["timeline"]], linestyle="--", label=f"{label} p99")
    top.set_ylabel("e2e payments done per second")
    top.legend()
    bottom.set_ylabel("latency of payments done that second (ms)")
    bottom.set_xlabel("seconds since load start")
    bottom.legend()
    fig.suptitle(f"aqsha bench {r['when'][:19]} (raw limit {r['raw_limit_payments_per_s']:.0f}/s)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write(r: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """latest.json, a timestamped copy and the PNG."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    paths = {
        "json": out_dir / "latest.json",
        "copy": out_dir / f"bench-{stamp}.json",
        "png": out_dir / "latest.png",
    }
    text = json.dumps(r, indent=2, default=str)
    paths["json"].write_text(text)
    paths["copy"].write_text(text)
    chart(r, paths["png"])
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """Run, print the table, write the report."""
    opts = Options.parse(argv)
    report = asyncio.run(bench(opts))
    if not report:
        return 0
    paths = write(report, opts.out_dir)
    print(table(report))
    print(trust_cost.summary_line(report["trust"]))
    print("phases (s):", ", ".join(f"{k} {v}" for k, v in report["phases_s"].items()))
    for mode in ("batch", "baseline"):
        print(f"  {mode}:", ", ".join(f"{k} {v}" for k, v in report[mode].get("phases_s", {}).items()))
    print(f"wall {report['wall_s']} s; report {paths['json']} (+ {paths['copy'].name}), chart {paths['png']}")
    return 0
