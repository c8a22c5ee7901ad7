"""Benchmarks behind ``make bench`` (``python -m bench``).

Each benchmark is a module exposing ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args) -> exit status``, listed in ``bench.__main__.BENCHMARKS``; it becomes the subcommand
``python -m bench NAME``, and ``python -m bench`` alone runs them all with their defaults.

- ``callback`` (:mod:`bench.callback_bench`): the WeCom callback path, ours vs a bare aiohttp
  handler vs a hand-rolled wechatpy peer, driven by :mod:`bench.loadgen` with messages from
  :mod:`bench.messages`.
"""
