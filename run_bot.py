#!/usr/bin/env python3
"""wecom-sentinel command line: parse arguments, load config, call into the packages.

python run_bot.py serve [--config FILE] [--host H] [--port P] [--workers N]
python run_bot.py simulate --text TEXT [--from USERID] [--url URL] [--config FILE]
python run_bot.py check [--config FILE]
python run_bot.py health [--config FILE] [--wait SECONDS]
python run_bot.py rules scan [--conversation] (--rules PATH | --words FILE [--allow FILE])  < lines
python run_bot.py rules check PATH [PATH ...]
python run_bot.py rules explain WORD
python run_bot.py rules backtest PATH [PATH ...] [--since YYYY-MM-DD] [--config FILE]
python run_bot.py rules sync-intercept [--dry-run] [--config FILE]
python run_bot.py archive export --format csv|jsonl [--since DATE] [--until DATE] [--tz ZONE]
                                 [--config FILE] OUT
python run_bot.py archive verify [--config FILE]
python run_bot.py archive head [--config FILE]
python run_bot.py archive purge [--dry-run] [--config FILE]
python run_bot.py archive holds [--config FILE]
python run_bot.py db upgrade [--config FILE]
python run_bot.py users add NAME --role reviewer|admin [--config FILE]   (password: prompt or 2 stdin lines)
python run_bot.py users disable NAME [--config FILE]
python run_bot.py users list [--config FILE]
python run_bot.py msgaudit status [--config FILE]
python run_bot.py msgaudit pull --once [--config FILE]
python run_bot.py msgaudit keys reload [--config FILE]
python run_bot.py msgaudit quarantine list|retry [--config FILE]

Each command imports what it uses when it runs: the server's stack (aiohttp, SQLAlchemy, Redis, the
sandbox) takes about 2 s to import, which ``rules``, ``--help`` and a mistyped argument need not wait.
"""

# Imports inside the commands are on purpose (see above):
# ruff: noqa: PLC0415

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import date
from pathlib import Path

from bot.config import Config, ConfigError, default_config_path, load_config

EXIT_CONFIG = 2
#: ``archive export --tz`` default; ``monitor.archive.export_cli.DEFAULT_TZ`` (checked by a test).
EXPORT_TZ = "Asia/Shanghai"


def _load(args: argparse.Namespace) -> Config:
    path = Path(args.config) if args.config else default_config_path()
    return load_config(path, os.environ)


def cmd_serve(args: argparse.Namespace) -> int:
    config = _load(args).with_overrides(host=args.host, port=args.port, workers=args.workers)
    print(
        f"starting wecom-sentinel ({config.source}): loading the rules, opening the database ...",
        flush=True,
    )
    from bot.web.preflight import check_services
    from bot.web.runner import serve

    check_services(config)
    return serve(config)


def cmd_check(args: argparse.Namespace) -> int:
    from bot.web.preflight import check_services, config_notes

    config = _load(args)
    check_services(config)
    for note in config_notes(config):
        print(f"note: {note}")
    print(f"{config.source}: OK")
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    from bot.web.health_probe import health_url, probe, wait_healthy

    url = health_url(_load(args))
    answer = wait_healthy(url, args.wait) if args.wait > 0 else probe(url)
    print(f"{url}: HTTP {answer.status or 'no answer'}, {answer.summary}")
    return 0 if answer.healthy else 1


def cmd_simulate(args: argparse.Namespace) -> int:
    import aiohttp

    from bot.sandbox.simulate import default_url, describe_alerts, describe_hits, simulate
    from wecom_sdk.errors import WeComError

    config = _load(args)
    url = args.url or default_url(config)
    try:
        result = asyncio.run(simulate(config, args.text, from_user=args.from_user, url=url))
    except aiohttp.ClientError as exc:
        print(
            f"cannot reach {url} ({exc.__class__.__name__}); is the bot running? try: make run",
            file=sys.stderr,
        )
        return 1
    except WeComError as exc:
        print(f"the answer did not verify or decrypt: {exc}", file=sys.stderr)
        return 1
    print(f"POST {url} -> HTTP {result.status}")
    if result.reply_xml is not None:
        print("passive reply (verified and decrypted):")
        print(result.reply_xml)
        if result.reply_text is not None:
            print(f"reply text: {result.reply_text}")
    elif result.status == 200:
        print("no passive reply (empty 200: the message was stored, nothing to answer)")
    else:
        print(f"error body: {result.body}")
    if result.status == 200:
        for line in (*describe_hits(config, result), *describe_alerts(config, result)):
            print(line)
    return 0 if 200 <= result.status < 300 else 1


def cmd_rules_scan(args: argparse.Namespace) -> int:
    from rules.cli import scan_command

    return scan_command(
        rules=args.rules,
        words=args.words,
        allow=args.allow,
        stdin=sys.stdin,
        stdout=sys.stdout,
        stderr=sys.stderr,
        conversation=args.conversation,
    )


def cmd_rules_explain(args: argparse.Namespace) -> int:
    from rules.cli import explain_command

    return explain_command(args.word, stdout=sys.stdout)


def cmd_rules_check(args: argparse.Namespace) -> int:
    from rules.cli import check_command

    return check_command(args.paths, stdout=sys.stdout)


def cmd_rules_backtest(args: argparse.Namespace) -> int:
    from monitor.archive import archived_texts
    from rules.cli import backtest_command

    config = _load(args)
    texts = archived_texts(config.storage.database_url, args.since)
    return backtest_command(args.paths, texts=texts, stdout=sys.stdout)


def cmd_rules_sync_intercept(args: argparse.Namespace) -> int:
    from bot.intercept_sync import sync_command

    return sync_command(_load(args), dry_run=args.dry_run, stdout=sys.stdout, stderr=sys.stderr)


def add_rules_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rules_p = sub.add_parser("rules", help="scan text with rules, validate rule files")
    rules_sub = rules_p.add_subparsers(dest="rules_command", required=True)

    scan_p = rules_sub.add_parser(
        "scan", help="read messages from stdin (one per line), write one JSON line of hits each"
    )
    source = scan_p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--rules", action="append", metavar="PATH", help="rule file or folder (repeatable)"
    )
    source.add_argument("--words", metavar="FILE", help="plain word list, one word per line")
    scan_p.add_argument("--allow", metavar="FILE", help="allow-list phrases (only with --words)")
    scan_p.add_argument(
        "--conversation",
        action="store_true",
        help='one conversation per line: {"messages": [{"from": ..., "text": ...}]}; '
        "words split over messages are found too",
    )
    scan_p.set_defaults(func=cmd_rules_scan)

    explain_p = rules_sub.add_parser("explain", help="list the spellings a word is matched in")
    explain_p.add_argument("word", metavar="WORD")
    explain_p.set_defaults(func=cmd_rules_explain)

    check_p = rules_sub.add_parser("check", help="validate rule files; errors as file:line")
    check_p.add_argument("paths", nargs="+", metavar="PATH", help="rule file or folder")
    check_p.set_defaults(func=cmd_rules_check)

    backtest_p = rules_sub.add_parser(
        "backtest", help="run draft rules over the archive: hit counts per word, with samples"
    )
    backtest_p.add_argument("paths", nargs="+", metavar="PATH", help="rule file or folder")
    backtest_p.add_argument(
        "--since", type=date.fromisoformat, metavar="YYYY-MM-DD", help="messages received from"
    )
    backtest_p.add_argument(
        "--config", help="TOML config (default: config.toml, else config.example.toml)"
    )
    backtest_p.set_defaults(func=cmd_rules_backtest)

    sync_p = rules_sub.add_parser(
        "sync-intercept",
        help="push the staff words to WeCom's own chat interception rules; print the diff",
    )
    sync_p.add_argument(
        "--dry-run", action="store_true", help="print the diff, change nothing (reads only)"
    )
    sync_p.add_argument(
        "--config", help="TOML config (default: config.toml, else config.example.toml)"
    )
    sync_p.set_defaults(func=cmd_rules_sync_intercept)


def cmd_archive_export(args: argparse.Namespace) -> int:
    from monitor.archive.export_cli import export_command

    config = _load(args)
    return export_command(
        database_url=config.storage.database_url,
        fmt=args.format,
        out=args.out,
        since=args.since,
        until=args.until,
        tz=args.tz,
        stdout=sys.stdout.buffer,
        stderr=sys.stderr,
    )


def cmd_archive_verify(args: argparse.Namespace) -> int:
    from monitor.archive.chain_cli import verify_command

    config = _load(args)
    return verify_command(config.storage.database_url, stdout=sys.stdout, stderr=sys.stderr)


def cmd_archive_head(args: argparse.Namespace) -> int:
    from monitor.archive.chain_cli import head_command

    config = _load(args)
    return head_command(config.storage.database_url, stdout=sys.stdout, stderr=sys.stderr)


def cmd_archive_purge(args: argparse.Namespace) -> int:
    from monitor.archive.purge_cli import purge_command

    config = _load(args)
    return purge_command(
        database_url=config.storage.database_url,
        retention_days=config.archive.retention_days,
        media_dir=config.msgaudit.media_dir,
        dry_run=args.dry_run,
        stdout=sys.stdout,
        stderr=sys.stderr,
    )


def cmd_archive_holds(args: argparse.Namespace) -> int:
    from monitor.archive.purge_cli import holds_command

    config = _load(args)
    return holds_command(config.storage.database_url, stdout=sys.stdout, stderr=sys.stderr)


def add_archive_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    archive_p = sub.add_parser(
        "archive", help="export the message archive, check and show its hash chains"
    )
    archive_sub = archive_p.add_subparsers(dest="archive_command", required=True)

    export_p = archive_sub.add_parser(
        "export",
        help="stream the archive to a CSV (Excel-ready) or JSON-lines file",
        description=(
            "Stream archived messages (one row each, with their hits) to OUT, oldest first. "
            "OUT appears only once complete (written to a temporary file, then renamed). "
            "CSV is UTF-8 with a BOM and CRLF line ends for Excel; a cell starting with "
            "= + - @ gets a leading ' so it is never run as a formula."
        ),
    )
    export_p.add_argument("--format", required=True, choices=("csv", "jsonl"))
    export_p.add_argument(
        "--since",
        metavar="DATE",
        help="from this date or ISO date-time, inclusive (YYYY-MM-DD = start of that day)",
    )
    export_p.add_argument(
        "--until",
        metavar="DATE",
        help="up to this ISO date-time, exclusive; a plain YYYY-MM-DD includes all of that day",
    )
    export_p.add_argument(
        "--tz",
        default=EXPORT_TZ,
        metavar="ZONE",
        help="time zone of dates without an offset, and of exported times (default: %(default)s)",
    )
    export_p.add_argument(
        "--config", help="TOML config (default: config.toml, else config.example.toml)"
    )
    export_p.add_argument("out", metavar="OUT", help="output file, or - for stdout")
    export_p.set_defaults(func=cmd_archive_export)

    verify_p = archive_sub.add_parser(
        "verify",
        help="check the archive's and the audit log's hash chains; exit 1 at the first bad block",
        description=(
            "Walk both hash chains (archive: messages with their hits, and message flags; audit: "
            "the audit log) block by block, checking every hash and every row. Prints one line "
            "per chain: what was checked, or the first bad block and row. Exit 0 when both are "
            "intact, else 1."
        ),
    )
    verify_p.add_argument(
        "--config", help="TOML config (default: config.toml, else config.example.toml)"
    )
    verify_p.set_defaults(func=cmd_archive_verify)

    head_p = archive_sub.add_parser(
        "head", help="print each chain's latest block: <chain> <seq> <sha256 hex>"
    )
    head_p.add_argument(
        "--config", help="TOML config (default: config.toml, else config.example.toml)"
    )
    head_p.set_defaults(func=cmd_archive_head)

    purge_p = archive_sub.add_parser(
        "purge",
        help="delete messages past [archive].retention_days (legal holds and open cases kept)",
        description=(
            "Delete archived messages received more than [archive].retention_days ago, with "
            "their hits, flags, alert links and media, and closed cases past retention; messages "
            "under a legal hold or in a conversation with an open case are kept. Each batch "
            "appends a checkpoint to the hash chain, so archive verify still passes."
        ),
    )
    purge_p.add_argument("--dry-run", action="store_true", help="count only, delete nothing")
    purge_p.add_argument(
        "--config", help="TOML config (default: config.toml, else config.example.toml)"
    )
    purge_p.set_defaults(func=cmd_archive_purge)

    holds_p = archive_sub.add_parser("holds", help="list legal holds (active first)")
    holds_p.add_argument(
        "--config", help="TOML config (default: config.toml, else config.example.toml)"
    )
    holds_p.set_defaults(func=cmd_archive_holds)


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from monitor.archive.schema_cli import upgrade_command

    config = _load(args)
    return upgrade_command(config.storage.database_url, stdout=sys.stdout, stderr=sys.stderr)


def add_db_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db_p = sub.add_parser("db", help="database schema migrations")
    db_sub = db_p.add_subparsers(dest="db_command", required=True)

    upgrade_p = db_sub.add_parser(
        "upgrade",
        help="apply the schema migrations (start-up does too); print the revision before and after",
    )
    upgrade_p.add_argument(
        "--config", help="TOML config (default: config.toml, else config.example.toml)"
    )
    upgrade_p.set_defaults(func=cmd_db_upgrade)


def cmd_users(args: argparse.Namespace) -> int:
    from monitor.review.users_cli import users_command

    config = _load(args)
    return users_command(
        args.users_command,
        database_url=config.storage.database_url,
        name=getattr(args, "name", ""),
        role=getattr(args, "role", ""),
        stdin=sys.stdin,
        stdout=sys.stdout,
        stderr=sys.stderr,
    )


def add_users_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    users_p = sub.add_parser("users", help="review-web accounts: add, disable, list")
    users_sub = users_p.add_subparsers(dest="users_command", required=True)
    config_help = "TOML config (default: config.toml, else config.example.toml)"

    add_p = users_sub.add_parser(
        "add",
        help="add an account; the password is asked twice (or read as two lines of stdin)",
        description=(
            "Add a review-web account. The password (at least 10 characters) is asked twice "
            "without echo, or read from stdin as two lines (password, confirmation) when stdin "
            "is not a terminal."
        ),
    )
    add_p.add_argument("name", metavar="NAME")
    # Checked by the command (one-line error), not by argparse choices (a usage dump).
    add_p.add_argument("--role", required=True, help="reviewer or admin")
    add_p.add_argument("--config", help=config_help)

    disable_p = users_sub.add_parser(
        "disable", help="disable an account; its sessions end at their next request"
    )
    disable_p.add_argument("name", metavar="NAME")
    disable_p.add_argument("--config", help=config_help)

    list_p = users_sub.add_parser("list", help="list the accounts")
    list_p.add_argument("--config", help=config_help)
    users_p.set_defaults(func=cmd_users)


def cmd_review_sample(args: argparse.Namespace) -> int:
    from monitor.review.sampling_cli import sample_command

    config = _load(args)
    return sample_command(
        database_url=config.storage.database_url,
        rate=config.review.sample_rate,
        week=args.week,
        stdout=sys.stdout,
        stderr=sys.stderr,
    )


def add_review_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    review_p = sub.add_parser("review", help="the review web's jobs: the weekly sample (抽检)")
    review_sub = review_p.add_subparsers(dest="review_command", required=True)
    sample_p = review_sub.add_parser(
        "sample",
        help="draw one ISO week's sample of conversations without hits into the queue, once",
    )
    sample_p.add_argument(
        "--week", metavar="YYYY-Www", help="the ISO week (UTC; default: the last complete one)"
    )
    sample_p.add_argument(
        "--config", help="TOML config (default: config.toml, else config.example.toml)"
    )
    sample_p.set_defaults(func=cmd_review_sample)


def cmd_msgaudit(args: argparse.Namespace) -> int:
    from bot.msgaudit.cli import msgaudit_command

    return msgaudit_command(_load(args), args.msgaudit_action, stdout=sys.stdout, stderr=sys.stderr)


def add_msgaudit_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    msgaudit_p = sub.add_parser(
        "msgaudit", help="staff chats from WeCom's conversation archive (会话内容存档)"
    )
    msgaudit_sub = msgaudit_p.add_subparsers(dest="msgaudit_command", required=True)
    config_help = "TOML config (default: config.toml, else config.example.toml)"

    status_p = msgaudit_sub.add_parser(
        "status", help="cursor, lag, quarantined records and private key versions"
    )
    status_p.add_argument("--config", help=config_help)
    status_p.set_defaults(msgaudit_action="status")

    pull_p = msgaudit_sub.add_parser(
        "pull", help="pull until caught up, deliver the alerts it queued, then exit"
    )
    pull_p.add_argument(
        "--once", action="store_true", required=True, help="one pull, then exit (required)"
    )
    pull_p.add_argument("--config", help=config_help)
    pull_p.set_defaults(msgaudit_action="pull")

    keys_p = msgaudit_sub.add_parser("keys", help="private keys of the archive")
    keys_sub = keys_p.add_subparsers(dest="keys_command", required=True)
    reload_p = keys_sub.add_parser(
        "reload",
        help="re-read [msgaudit].private_keys, tell every worker, retry the quarantine",
    )
    reload_p.add_argument("--config", help=config_help)
    reload_p.set_defaults(msgaudit_action="keys-reload")

    quarantine_p = msgaudit_sub.add_parser("quarantine", help="records that could not be decrypted")
    quarantine_sub = quarantine_p.add_subparsers(dest="quarantine_command", required=True)
    list_p = quarantine_sub.add_parser(
        "list", help="one JSON line per quarantined record (msgid, publickey_ver, reason)"
    )
    list_p.add_argument("--config", help=config_help)
    list_p.set_defaults(msgaudit_action="quarantine-list")
    retry_p = quarantine_sub.add_parser(
        "retry", help="decrypt the quarantined records again; archive those that open"
    )
    retry_p.add_argument("--config", help=config_help)
    retry_p.set_defaults(msgaudit_action="quarantine-retry")
    msgaudit_p.set_defaults(func=cmd_msgaudit)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="run_bot.py", description="wecom-sentinel")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--config", help="TOML config (default: config.toml, else config.example.toml)"
        )
        return p

    serve_p = with_config(sub.add_parser("serve", help="run the callback server"))
    serve_p.add_argument("--host")
    serve_p.add_argument("--port", type=int)
    serve_p.add_argument(
        "--workers", type=int, help="worker processes sharing the port (needs Redis)"
    )
    serve_p.set_defaults(func=cmd_serve)

    sim = with_config(sub.add_parser("simulate", help="send a sealed text message like WeCom does"))
    sim.add_argument("--text", required=True)
    sim.add_argument("--from", dest="from_user", default="zhangsan", help="sender userid")
    sim.add_argument("--url", help="callback URL (default: from the config)")
    sim.set_defaults(func=cmd_simulate)

    check = with_config(sub.add_parser("check", help="validate the config and reach its services"))
    check.set_defaults(func=cmd_check)

    health = with_config(
        sub.add_parser("health", help="ask the running server's /healthz; exit 0 when healthy")
    )
    health.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="retry until healthy or this long",
    )
    health.set_defaults(func=cmd_health)

    add_rules_parser(sub)
    add_archive_parser(sub)
    add_db_parser(sub)
    add_users_parser(sub)
    add_review_parser(sub)
    add_msgaudit_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "allow", None) is not None and getattr(args, "words", None) is None:
        parser.error("--allow can only be used with --words")
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return code


if __name__ == "__main__":
    sys.exit(main())
