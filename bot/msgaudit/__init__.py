"""The conversation archive puller (会话内容存档)."""

__all__: list[str] = []
