"""The bot's HTTP surface: the aiohttp app factory, typed app state, resources, health and metrics
endpoints, start-up checks and the worker runner.
"""

from __future__ import annotations

__all__: list[str] = []
