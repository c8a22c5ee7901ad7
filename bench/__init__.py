"""Benchmarks behind ``make bench`` (``python -m bench``).

Each benchmark is a module exposing ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args) -> exit status``, listed in ``bench.__main__.BENCHMARKS``; it becomes the subcommand
``python -m bench NAME``, and ``python -m bench`` alone runs them all with their defaults.
``python -m bench selftest`` (:mod:`bench.selftest`, same shape, not part of a full run) checks
the harness itself.

- ``callback`` (:mod:`bench.callback_bench`): the WeCom callback path, ours vs a bare aiohttp
  handler vs a hand-rolled wechatpy peer, driven by :mod:`bench.loadgen` with messages from
  :mod:`bench.messages`.
- ``rules`` (:mod:`bench.rules_bench`): the matcher against raw Aho-Corasick and a naive loop.
- ``alerts`` (:mod:`bench.alerts`): hit messages through the alert policy, outbox and a fake WeCom.
- ``kf`` (:mod:`bench.kf_bench`): a queue of 微信客服 messages pulled, archived and answered.
- ``msgaudit`` (:mod:`bench.msgaudit_bench`): 会话内容存档 records pulled on one core (RSA,
  DecryptData, intake, archive), and the lag recovery after a one-day outage.

``--quick`` and ``--json`` (callback, alerts, kf, msgaudit) are what the smoke tests run, as subprocesses:
the tests never import this package, nor this package the tests.
"""
