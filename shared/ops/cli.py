"""The ``aqsha`` operator CLI: thin Typer wiring over ``shared.ops.kafka_tools``, ``service_tools`` and
``sim_tools``.

Configuration comes from the environment (``shared.settings.Settings``: ``AQSHA_KAFKA_BOOTSTRAP``,
``AQSHA_KAFKA_TOPIC_SUFFIX``, ``AQSHA_PG_DSN``...), filled in from the profile ``make run`` writes
(``shared.ops.profile``), and overridden by ``--bootstrap``/``--dsn``. Errors are one line on stderr
with a non-zero exit code: 2 for bad input (nothing was done), 1 for operational failures. See
docs/cli.md.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from shared.ops.common import EXIT_FAILURE, OpsError, dumps, table
from shared.settings import Settings

T = TypeVar("T")

app = typer.Typer(
    name="aqsha",
    help="Operator tools for the aqsha platform (Kafka topics, commands, dead letters, lag, read models).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
topics_app = typer.Typer(help="Topics as code from the registry (shared/topics.py).", no_args_is_help=True)
dlq_app = typer.Typer(help="Dead letters on <topic>.dlq: inspect and redrive.", no_args_is_help=True)
billing_app = typer.Typer(
    help="Billing: the business day, bills and the bill calendar.", no_args_is_help=True
)
payments_app = typer.Typer(help="Payments: debt lookups and the read side.", no_args_is_help=True)
notify_app = typer.Typer(help="Notify read side.", no_args_is_help=True)
customer_app = typer.Typer(help="A customer across the services (read only).", no_args_is_help=True)
bonus_app = typer.Typer(help="Bonus read side.", no_args_is_help=True)
clock_app = typer.Typer(
    help="The simulated clock of a development platform (AQSHA_CLOCK_FILE).", no_args_is_help=True
)
app.add_typer(topics_app, name="topics")
app.add_typer(dlq_app, name="dlq")
app.add_typer(billing_app, name="billing")
app.add_typer(payments_app, name="payments")
app.add_typer(notify_app, name="notify")
app.add_typer(customer_app, name="customer")
app.add_typer(bonus_app, name="bonus")
app.add_typer(clock_app, name="clock")

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]
CustomerArg = Annotated[str, typer.Argument(metavar="CUSTOMER", help="Customer id (UUID).")]


def echo(line: str) -> None:
    """Print one line to stdout."""
    typer.echo(line)


def fail(message: str, code: int = EXIT_FAILURE) -> typer.Exit:
    """Print ``aqsha: error: message`` on stderr and return the Exit to raise."""
    typer.echo(f"aqsha: error: {message}", err=True)
    return typer.Exit(code)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; ``OpsError`` and connection failures become one-line errors."""
    try:
        return asyncio.run(coro)
    except OpsError as exc:
        raise fail(exc.message, exc.code) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except (OSError, TimeoutError) as exc:
        raise fail(f"{type(exc).__name__}: {exc}") from None
    except Exception as exc:
        if type(exc).__module__.startswith(("aiokafka", "asyncpg")):
            raise fail(f"{type(exc).__name__}: {exc}") from None
        raise


def settings() -> Settings:
    """Settings from the environment (a bad value is a one-line usage error)."""
    try:
        return Settings()
    except Exception as exc:
        raise fail(f"invalid AQSHA_* configuration: {exc}", 2) from None


def _usage(call: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return call(*args, **kwargs)
    except OpsError as exc:
        raise fail(exc.message, exc.code) from None


# ---------------------------------------------------------------------------------- configuration
@app.callback()
def configure(
    ctx: typer.Context,
    bootstrap: Annotated[
        str | None,
        typer.Option(
            "--bootstrap",
            metavar="HOST:PORT",
            help="Kafka bootstrap servers; overrides AQSHA_KAFKA_BOOTSTRAP and the profile.",
        ),
    ] = None,
    dsn: Annotated[
        str | None,
        typer.Option("--dsn", metavar="DSN", help="PostgreSQL DSN; overrides AQSHA_PG_DSN and the profile."),
    ] = None,
    profile: Annotated[
        Path | None,
        typer.Option(
            "--profile",
            metavar="FILE",
            help="The profile to read (default: AQSHA_PROFILE, else .run/aqsha.env here or in a parent "
            "directory, as make run writes it).",
        ),
    ] = None,
) -> None:
    """Operator tools for the aqsha platform.

    Settings: flags, then AQSHA_* variables, then the profile make run writes (.run/aqsha.env), then
    the defaults. `aqsha config` shows what is in effect.
    """
    from shared.ops.profile import overlay, resolve_profile

    resolved = _usage(resolve_profile, profile, os.environ)
    if resolved.note:
        typer.echo(f"aqsha: note: {resolved.note}", err=True)
    applied = overlay(resolved.profile, os.environ, {"AQSHA_KAFKA_BOOTSTRAP": bootstrap, "AQSHA_PG_DSN": dsn})
    saved = {name: os.environ.get(name) for name in applied}
    os.environ.update({name: value for name, (value, _) in applied.items()})

    def restore() -> None:  # the process's environment as it was (tests run many commands in one)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    ctx.call_on_close(restore)
    ctx.obj = {"profile": resolved.profile, "applied": applied}


#: What ``aqsha config`` shows: the settings the CLI's commands use.
CONFIG_VARIABLES = (
    ("AQSHA_KAFKA_BOOTSTRAP", "Kafka bootstrap servers"),
    ("AQSHA_KAFKA_TOPIC_SUFFIX", "topic name suffix"),
    ("AQSHA_KAFKA_SECURITY_PROTOCOL", "Kafka security protocol"),
    ("AQSHA_KAFKA_SASL_USERNAME", "Kafka login"),
    ("AQSHA_PG_DSN", "PostgreSQL"),
    ("AQSHA_REDIS_URL", "Redis"),
    ("AQSHA_CLOCK_FILE", "simulated clock"),
    ("AQSHA_TRUST_SIGNING_KEY_FILE", "the operator's signing key"),
    ("AQSHA_TRUST_KEYS_DIR", "keyring for send --as"),
    ("AQSHA_TRUST_REGISTRY_FILE", "trust registry"),
    ("AQSHA_GATEWAYS_URL", "simulated SMS and push gateways"),
)


@app.command("config")
def config(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """The settings in effect and where each comes from: flag, environment, profile or default."""
    from shared.ops.profile import mask_secrets

    cfg = settings()
    state = ctx.obj or {}
    applied: dict[str, tuple[str, str]] = state.get("applied", {})
    defaults = {
        "AQSHA_KAFKA_BOOTSTRAP": cfg.kafka.bootstrap,
        "AQSHA_KAFKA_TOPIC_SUFFIX": cfg.kafka.topic_suffix,
        "AQSHA_KAFKA_SECURITY_PROTOCOL": cfg.kafka.security_protocol,
        "AQSHA_PG_DSN": cfg.db.dsn,
        "AQSHA_REDIS_URL": cfg.redis.url,
    }
    rows = []
    for name, what in CONFIG_VARIABLES:
        if name in applied:
            source = applied[name][1]
        elif name in os.environ:
            source = "environment"
        else:
            source = "default"
        value = os.environ.get(name, defaults.get(name))
        rows.append({"variable": name, "what": what, "value": mask_secrets(name, value), "source": source})
    profile = state.get("profile")
    where = str(profile.path) if profile is not None else None
    if as_json:
        echo(dumps({"profile": where, "settings": rows}, indent=2))
        return
    echo(f"profile: {where or 'none'}")
    echo(
        table(
            ["variable", "value", "from", "what"],
            [[r["variable"], r["value"] or "-", r["source"], r["what"]] for r in rows],
        )
    )


# ------------------------------------------------------------------------------------------- topics
@topics_app.command("list")
def topics_list(as_json: JsonOpt = False) -> None:
    """Each registry topic (and .dlq) with partitions, retention, key, producers, consumers, existence."""
    from shared.ops.kafka_tools import render_topics, topic_states

    states = run(topic_states(settings().kafka))
    echo(dumps([s.as_dict() for s in states], indent=2) if as_json else render_topics(states))


@topics_app.command("apply")
def topics_apply(as_json: JsonOpt = False) -> None:
    """Create every missing registry topic and dead-letter topic (existing ones are left as they are)."""
    from shared.ops.kafka_tools import apply_topics

    created, states = run(apply_topics(settings().kafka))
    drift = [s for s in states if s.exists and s.partitions_on_broker != s.spec.partitions]
    if as_json:
        echo(
            dumps(
                {"created": created, "existing": [s.name for s in states if s.name not in created]}, indent=2
            )
        )
    else:
        echo(f"created {len(created)} topic(s)" + (": " + ", ".join(created) if created else ""))
        echo(
            f"{len(states) - len(created)} already existed; {sum(1 for s in states if s.exists)} of "
            f"{len(states)} registry topics now exist"
        )
        for s in drift:
            echo(
                f"warning: {s.name} has {s.partitions_on_broker} partitions, the registry says "
                f"{s.spec.partitions} (changing it moves keys: an operator decision)"
            )
    if any(not s.exists for s in states):
        raise fail("some topics still do not exist: " + ", ".join(s.name for s in states if not s.exists))


# --------------------------------------------------------------------------------------------- send
@app.command()
def send(
    file: Annotated[str, typer.Argument(help="JSON file with the command(s), or - for stdin.")],
    force: Annotated[bool, typer.Option("--force", help="Also allow events (not only commands).")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate, sign and print, do not produce.")
    ] = False,
    key_file: Annotated[
        Path | None,
        typer.Option(
            "--key",
            metavar="FILE",
            help="Signing key (Ed25519 PEM). Default: AQSHA_TRUST_SIGNING_KEY_FILE.",
        ),
    ] = None,
    as_: Annotated[
        str | None,
        typer.Option(
            "--as",
            metavar="PRINCIPAL",
            help="Principal to sign as (default: the key file's stem). With only AQSHA_TRUST_KEYS_DIR "
            "set, its <PRINCIPAL>.pem is the key.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Validate command(s) against their contract, sign them and produce them with the right key and headers.

    Input: {"type": "PayService", "payload": {...}} ("data" also accepted), a full envelope (with
    event_id), an array of them, or one per line. The envelope's producer is the signing principal,
    and a document that principal may not write is refused before anything is sent.
    """
    from shared.ops.kafka_tools import load_documents, operator_signer, prepare, produce, render_sent

    if file == "-":
        text = sys.stdin.read()
    else:
        try:
            text = Path(file).read_text(encoding="utf-8")
        except OSError as exc:
            raise fail(f"cannot read {file}: {exc.strerror}", 2) from None
    cfg = settings()
    signer = _usage(operator_signer, cfg.trust, key_file=key_file, principal=as_)
    docs = _usage(load_documents, text)
    outgoing = []
    for i, doc in enumerate(docs):
        try:
            message = prepare(doc, producer=signer.principal, suffix=cfg.kafka.topic_suffix, force=force)
            outgoing.append(message.signed_by(signer))
        except OpsError as exc:
            where = f"message {i + 1}: " if len(docs) > 1 else ""
            raise fail(where + exc.message, exc.code) from None
    if dry_run:
        for m in outgoing:
            if as_json:
                envelope = m.envelope.model_dump(mode="json", serialize_as_any=True)
                echo(
                    dumps(
                        {"topic": m.topic, "key": m.envelope.key, "headers": m.headers, "envelope": envelope}
                    )
                )
            else:
                echo(f"valid {m.envelope.type} key={m.envelope.key} -> {m.topic} (dry run, not sent)")
        return
    for s in run(produce(cfg.kafka, outgoing)):
        echo(dumps(s) if as_json else render_sent(s))


# --------------------------------------------------------------------------------------------- tail
@app.command()
def tail(
    topic: Annotated[str, typer.Argument(help="Topic, e.g. aqsha.payments.events (or its .dlq).")],
    from_beginning: Annotated[
        bool, typer.Option("--from-beginning", help="Start at the oldest record.")
    ] = False,
    customer: Annotated[str | None, typer.Option(help="Only this customer (record key or payload).")] = None,
    type_: Annotated[
        list[str] | None, typer.Option("--type", help="Only this contract type (repeatable).")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Stop after N records.")] = None,
    follow: Annotated[
        bool, typer.Option("--follow/--no-follow", help="Keep waiting for new records.")
    ] = True,
    partition: Annotated[
        list[int] | None, typer.Option("--partition", "-p", min=0, help="Only this partition (repeatable).")
    ] = None,
    offset: Annotated[
        int | None,
        typer.Option(
            "--offset",
            "-o",
            help="Start at this offset in each partition read; negative: that many records before the end.",
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="WHEN",
            help="Start at the first record written at or after WHEN: 2025-11-24T09:00 (Asia/Almaty unless "
            "a zone is given) or a duration ago (15m, 2h, 1d).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Decode and print records of a topic, money formatted.

    Starts at the end unless --from-beginning, --offset or --since says where; --partition limits the
    partitions read.
    """
    from shared.ops.common import base_topic
    from shared.ops.kafka_tools import check_start, check_types
    from shared.ops.kafka_tools import tail as do_tail
    from shared.ops.sim_tools import parse_since

    cfg = settings()
    _usage(base_topic, topic, cfg.kafka.topic_suffix)  # a mistyped topic: usage error before connecting
    _usage(check_types, type_ or ())
    start = _usage(parse_since, since) if since is not None else None
    _usage(check_start, from_beginning=from_beginning, offset=offset, since=start)
    count = run(
        do_tail(
            cfg.kafka,
            topic,
            echo=echo,
            from_beginning=from_beginning,
            customer=customer,
            types=type_ or (),
            limit=limit,
            follow=follow,
            as_json=as_json,
            partitions=partition or (),
            offset=offset,
            since=start,
        )
    )
    if not as_json:
        typer.echo(f"({count} record(s))", err=True)


# ---------------------------------------------------------------------------------------------- dlq
@dlq_app.command("list")
def dlq_list(
    topic: Annotated[str | None, typer.Argument(help="Topic or its .dlq; omit for an overview.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Dead letters of a topic (reason, error, original position, group, failed-at, attempts, redriven)."""
    from shared.ops.kafka_tools import dlq_summary, read_dlq, render_dlq_list, render_dlq_summary

    cfg = settings()
    if topic is None:
        rows = run(dlq_summary(cfg.kafka))
        echo(dumps(rows, indent=2) if as_json else render_dlq_summary(rows))
        return
    view = run(read_dlq(cfg.kafka, topic))
    echo(dumps([d.as_dict() for d in view.letters], indent=2) if as_json else render_dlq_list(view))


@dlq_app.command("show")
def dlq_show(
    topic: Annotated[str, typer.Argument(help="Topic or its .dlq.")],
    offset: Annotated[int, typer.Option(help="Offset of the dead letter on the .dlq topic.")],
    partition: Annotated[
        int | None, typer.Option(help="Partition (needed when the offset is ambiguous).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """One dead letter in full: failure headers, original headers, decoded payload or raw value."""
    from shared.ops.kafka_tools import read_dlq, render_dlq_show, select_letter

    view = run(read_dlq(settings().kafka, topic))
    letter = _usage(select_letter, view, offset, partition)
    echo(dumps(letter.as_dict(), indent=2) if as_json else render_dlq_show(letter))


@dlq_app.command("redrive")
def dlq_redrive(
    topic: Annotated[str, typer.Argument(help="Topic or its .dlq.")],
    all_: Annotated[bool, typer.Option("--all", help="Every dead letter not redriven yet.")] = False,
    offset: Annotated[int | None, typer.Option(help="Only the dead letter at this .dlq offset.")] = None,
    partition: Annotated[int | None, typer.Option(help="Only this .dlq partition.")] = None,
    reason: Annotated[list[str] | None, typer.Option(help="Only this reason, e.g. handler_error.")] = None,
    include_redriven: Annotated[
        bool, typer.Option("--include-redriven", help="Also resend letters redriven before.")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be redriven.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Send dead letters back to their original topic (same key, value, headers; aqsha-dlq-* dropped).

    Redriven letters are remembered (consumer group aqsha-ops-redrive on the .dlq topic), so
    `--all` twice does not resend. Consumers de-duplicate, so a resend is harmless anyway.
    """
    from shared.ops.common import base_topic
    from shared.ops.kafka_tools import (
        Redriven,
        read_dlq,
        redrive,
        render_redriven,
        require_selection,
        select_for_redrive,
    )

    cfg = settings()
    _usage(base_topic, topic, cfg.kafka.topic_suffix)
    _usage(require_selection, all_=all_, offset=offset, reasons=reason or ())  # before connecting
    view = run(read_dlq(cfg.kafka, topic))
    chosen = _usage(
        select_for_redrive,
        view,
        all_=all_,
        offset=offset,
        partition=partition,
        reasons=reason or (),
        include_redriven=include_redriven,
    )
    if dry_run:
        done = [
            Redriven(
                d.item.partition,
                d.item.offset,
                d.item.type,
                d.original[0] or view.original_topic,
                d.original[1] if d.original[1] is not None else -1,
                -1,
            )
            for d in chosen
        ]
    else:
        done = run(redrive(cfg.kafka, view, chosen))
    if as_json:
        echo(dumps({"dlq_topic": view.topic, "dry_run": dry_run, "redriven": done}, indent=2))
    else:
        echo(render_redriven(view, done, dry_run=dry_run))


# ---------------------------------------------------------------------------------------------- lag
@app.command()
def lag(
    group: Annotated[list[str] | None, typer.Option(help="Only this consumer group (repeatable).")] = None,
    topic: Annotated[list[str] | None, typer.Option(help="Only this topic (repeatable).")] = None,
    all_partitions: Annotated[bool, typer.Option("--all-partitions", help="Also empty partitions.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Consumer lag per group and partition: committed offset vs end offset, for every registry group.

    --group also takes any other group on the broker: its lag on every registry topic (and .dlq) where
    it has committed offsets.
    """
    from shared.ops.common import base_topic
    from shared.ops.kafka_tools import compute_lag, render_lag

    cfg = settings()
    for name in topic or ():
        _usage(base_topic, name, cfg.kafka.topic_suffix)
    rows, missing = run(compute_lag(cfg.kafka, only_groups=group or (), only_topics=topic or ()))
    if as_json:
        echo(dumps({"partitions": [r.as_dict() for r in rows], "missing_topics": missing}, indent=2))
    else:
        echo(render_lag(rows, missing, all_partitions=all_partitions, requested=group or ()))


# ------------------------------------------------------------------------------------------ billing
@billing_app.command("run-day")
def billing_run_day(
    business_date: Annotated[str, typer.Argument(metavar="DATE", help="Business date, YYYY-MM-DD.")],
    direct: Annotated[
        bool, typer.Option("--direct", help="Run it here against the database instead of via Kafka.")
    ] = False,
    by: Annotated[str, typer.Option("--by", help="requested_by recorded with the run.")] = "ops-cli",
    wait: Annotated[
        bool,
        typer.Option(
            "--wait", help="Wait until billing has closed the day (BusinessDayClosed); print its counts."
        ),
    ] = False,
    timeout: Annotated[
        float, typer.Option(min=1, help="Seconds --wait waits for billing (then exit 1; the day still runs).")
    ] = 120.0,
    as_json: JsonOpt = False,
) -> None:
    """Run billing's business day for DATE: produce RunBusinessDay, or with --direct run it in-process.

    Via Kafka the command is signed as the principal ops (AQSHA_TRUST_SIGNING_KEY_FILE, or ops.pem
    of AQSHA_TRUST_KEYS_DIR). With --wait the command waits for billing's BusinessDayClosed on
    aqsha.billing.days for exactly this command, and prints the bills, overdue records and penalties.
    """
    from shared.ops.kafka_tools import render_sent
    from shared.ops.service_tools import (
        business_day_command,
        business_day_signer,
        parse_date,
        render_day_closed,
        render_day_report,
        run_day_and_wait,
        run_day_direct,
        run_day_via_kafka,
    )

    day = _usage(parse_date, business_date)
    cfg = settings()
    _usage(business_day_command, day, by)  # a bad --by: usage error, nothing sent
    if direct:
        report = run(run_day_direct(cfg, day, by))
        echo(dumps(report) if as_json else render_day_report(report))
        return
    signer = _usage(business_day_signer, cfg)
    if wait:
        result = run(run_day_and_wait(cfg, day, by, signer, timeout_s=timeout))
        if as_json:
            echo(dumps(result, indent=2))
        else:
            echo(render_sent(result["sent"]))
            echo(render_day_closed(result["closed"]))
        return
    sent = run(run_day_via_kafka(cfg, day, by, signer))
    if as_json:
        echo(dumps(sent))
    else:
        echo(render_sent(sent))
        echo(f"billing will close business day {day.isoformat()} when it consumes the command")


@billing_app.command("bills")
def billing_bills(customer: CustomerArg, as_json: JsonOpt = False) -> None:
    """Every bill issued to a customer, with its status and what is still owed.

    PAID, OPEN or OVERDUE, the amount, the due date, the overdue and penalty dates and the purchase
    parts. Read only (services/billing/queries.py).
    """
    from shared.ops.service_tools import customer_bills, parse_uuid, render_bills

    cid = _usage(parse_uuid, customer)
    found = run(customer_bills(settings(), cid))
    echo(dumps(found, indent=2) if as_json else render_bills(found))


@billing_app.command("calendar")
def billing_calendar(
    customer: Annotated[str, typer.Argument(help="Customer id (UUID).")],
    as_json: JsonOpt = False,
) -> None:
    """A customer's Kaspi Red bill calendar: each month's bill, its parts and amount, issued or to come.

    Read only: computed from billing's account snapshot (services/billing/queries.py), nothing is sent.
    """
    from shared.ops.service_tools import bill_calendar, parse_uuid, render_calendar

    cid = _usage(parse_uuid, customer)
    found = run(bill_calendar(settings(), cid))
    echo(dumps(found, indent=2) if as_json else render_calendar(found))


# ----------------------------------------------------------------------------------------- payments
@payments_app.command("lookup")
def payments_lookup(
    provider: Annotated[str, typer.Argument(help='Provider code, e.g. "almaty-energo".')],
    account: Annotated[str, typer.Argument(help="The personal account number at the provider.")],
    customer: Annotated[str, typer.Option("--customer", help="The customer who asks (UUID).")],
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for payments' reply.")] = 30.0,
    as_json: JsonOpt = False,
) -> None:
    """Check the debt on an account (seed 000): send LookupDebt and print payments' reply.

    Signed as the principal ops (AQSHA_TRUST_SIGNING_KEY_FILE, or ops.pem of AQSHA_TRUST_KEYS_DIR).
    Changes nothing. The owner's name and address are masked. Exit 0 when a debt was found, 1 when
    the reply says why not (printed) or none came.
    """
    from shared.ops.kafka_tools import render_sent
    from shared.ops.service_tools import (
        lookup_command,
        lookup_debt,
        lookup_signer,
        parse_uuid,
        render_lookup,
    )

    cid = _usage(parse_uuid, customer)
    cfg = settings()
    _usage(lookup_command, cid, provider, account)  # a bad provider or account: usage error, nothing sent
    signer = _usage(lookup_signer, cfg)
    result = run(lookup_debt(cfg, cid, provider, account, signer, timeout_s=timeout))
    if as_json:
        echo(dumps({"sent": result["sent"], "found": result["found"], "reply": result["reply"]}, indent=2))
    else:
        echo(render_sent(result["sent"]))
        echo(render_lookup(result))
    if not result["found"]:
        raise typer.Exit(EXIT_FAILURE)


# ------------------------------------------------------------------------------------- read models
@customer_app.command("show")
def customer_show(customer: CustomerArg, as_json: JsonOpt = False) -> None:
    """A customer at a glance: balances, bonus, Kaspi Red, open bills, what is outstanding.

    Kaspi Gold and Wallet, the bonus balance, the Red limit and available amount, open bills with their
    due dates, the outstanding amount and penalties: one read-only snapshot of payments', bonus' and
    billing's own read models (their queries.py).
    """
    from shared.ops.service_tools import customer_view, parse_uuid, render_customer

    cid = _usage(parse_uuid, customer)
    view = run(customer_view(settings(), cid))
    echo(dumps(view, indent=2) if as_json else render_customer(view))


@bonus_app.command("history")
def bonus_history(
    customer: CustomerArg,
    limit: Annotated[int | None, typer.Option(min=1, help="At most N entries (newest first).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """A customer's bonus balance and ledger, newest first.

    Accruals, reversals, redemptions and restorations, with the rule and the balance after each. Read
    only (services/bonus/queries.py).
    """
    from shared.ops.service_tools import bonus_history as read_history
    from shared.ops.service_tools import parse_uuid, render_bonus_history

    cid = _usage(parse_uuid, customer)
    found = run(read_history(settings(), cid, limit))
    echo(dumps(found, indent=2) if as_json else render_bonus_history(found))


@payments_app.command("history")
def payments_history(
    customer: Annotated[str, typer.Argument(help="Customer id (UUID).")],
    as_json: JsonOpt = False,
) -> None:
    """A customer's payments, newest first, with their statuses (as in the app's history)."""
    from shared.ops.service_tools import parse_uuid, payment_history, render_history

    cid = _usage(parse_uuid, customer)
    rows = run(payment_history(settings(), cid))
    echo(dumps(rows, indent=2) if as_json else render_history(cid, rows))


@notify_app.command("inbox")
def notify_inbox(
    customer: Annotated[str, typer.Argument(help="Customer id (UUID).")],
    limit: Annotated[int, typer.Option(min=1, help="At most N messages.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """A customer's in-app inbox, newest first."""
    from shared.ops.service_tools import customer_inbox, parse_uuid, render_inbox

    cid = _usage(parse_uuid, customer)
    rows = run(customer_inbox(settings(), cid, limit))
    echo(dumps(rows, indent=2) if as_json else render_inbox(cid, rows))


@app.command()
def receipt(
    number: Annotated[str, typer.Argument(help="Receipt number: AQ-YYYYMMDD-NNNNNNNN or RED-<16 hex>.")],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="PDF path (default NUMBER.pdf).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Fetch a receipt as PDF."""
    from shared.ops.service_tools import fetch_receipt

    path = output or Path(f"{number}.pdf")
    size = run(fetch_receipt(settings(), number, path))
    if as_json:
        echo(dumps({"receipt_number": number, "path": str(path), "bytes": size}))
    else:
        echo(f"wrote receipt {number} to {path} ({size} bytes)")


@app.command()
def reconcile(as_json: JsonOpt = False) -> None:
    """Cross-service reconciliation report (exit 0 clean, 1 discrepancies)."""
    from shared.ops.reconcile import reconcile_report

    report = run(reconcile_report(settings()))
    echo(dumps(report.as_dict(), indent=2) if as_json else report.render())
    raise typer.Exit(0 if report.clean else 1)


# ------------------------------------------------------------------------------------ the simulation
@clock_app.command("show")
def clock_show(as_json: JsonOpt = False) -> None:
    """The simulated time every service reads now, its business date and the 20:00 cut-off."""
    from shared.ops.sim_tools import clock_file, clock_state, render_clock

    path = _usage(clock_file, settings())
    state = _usage(clock_state, path)
    echo(dumps(state) if as_json else render_clock(state))


@clock_app.command("set")
def clock_set(
    when: Annotated[
        str,
        typer.Argument(
            metavar="WHEN",
            help="2025-11-24 (00:00) or 2025-11-24T19:59[:SS], Asia/Almaty unless a zone is given.",
        ),
    ],
    backwards: Annotated[
        bool, typer.Option("--backwards", help="Allow moving the clock back in time.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Move the simulated clock of every service to WHEN (it runs on from there)."""
    from shared.ops.sim_tools import clock_file, parse_moment, render_clock, set_clock

    path = _usage(clock_file, settings())
    target = _usage(parse_moment, when)
    state = _usage(set_clock, path, target, backwards=backwards)
    echo(dumps(state) if as_json else render_clock(state))


@clock_app.command("advance")
def clock_advance(
    duration: Annotated[
        str, typer.Argument(metavar="DURATION", help="How far forward: 90m, 3h, 2d, 1w, 1d12h.")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Move the simulated clock of every service forward by DURATION."""
    from shared.ops.sim_tools import advance_clock, clock_file, parse_duration, render_clock

    path = _usage(clock_file, settings())
    delta = _usage(parse_duration, duration)
    state = _usage(advance_clock, path, delta)
    echo(dumps(state) if as_json else render_clock(state))


@app.command("sms")
def sms(
    phone: Annotated[
        str | None, typer.Argument(metavar="PHONE", help="Only the SMS to this phone (+77011234567).")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the newest N.")] = None,
    code: Annotated[
        bool, typer.Option("--code", help="Print only the one-time code of the newest SMS carrying one.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """The SMS make run's simulated gateway received: what the customer's phone shows.

    One-time codes, 3-D Secure codes and texts, oldest first. Only on a development platform
    (AQSHA_GATEWAYS_URL, from make run's profile).
    """
    from shared.ops.sim_tools import gateways_url, last_code, read_sms, render_sms

    settings()
    url = _usage(gateways_url, os.environ)
    messages = run(read_sms(url, phone))
    if limit is not None:
        messages = messages[-limit:]
    if code:
        found = last_code(messages)
        if found is None:
            raise fail(f"no SMS with a one-time code{' to ' + phone if phone else ''}")
        echo(dumps({"code": found}) if as_json else found)
        return
    echo(dumps(messages, indent=2) if as_json else render_sms(messages, phone))


#: Options of the whole CLI that may also be written after the command (``aqsha reconcile --dsn X``).
GLOBAL_OPTIONS = ("--bootstrap", "--dsn", "--profile")


def hoist_global_options(argv: list[str]) -> list[str]:
    """``argv`` with the global options and their values moved before the command, where Click wants them."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest += argv[i:]
            break
        name = arg.split("=", 1)[0]
        if name in GLOBAL_OPTIONS:
            if "=" in arg or i + 1 >= len(argv):
                front.append(arg)
                i += 1
            else:
                front += argv[i : i + 2]
                i += 2
            continue
        rest.append(arg)
        i += 1
    return front + rest


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``aqsha`` console script: usage errors, too, are one line on stderr."""
    # Typer 0.29 vendors Click (typer._click); its exceptions are Click's (pinned in uv.lock).
    from typer._click import exceptions as click

    command = typer.main.get_command(app)
    args = hoist_global_options(list(sys.argv[1:] if argv is None else argv))
    try:
        code = command.main(args=args, prog_name="aqsha", standalone_mode=False)
    except click.NoArgsIsHelpError as exc:
        exc.show()
        code = 2
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "aqsha"
        typer.echo(f"aqsha: error: {exc.format_message()} (see `{where} --help`)", err=True)
        code = exc.exit_code
    except click.ClickException as exc:
        typer.echo(f"aqsha: error: {exc.format_message()}", err=True)
        code = exc.exit_code
    except typer.Abort:
        code = 130
    raise SystemExit(code if isinstance(code, int) else 0)
