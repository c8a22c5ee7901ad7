"""Answer with the reply rule the rules engine chose for this message (``ctx.inspection.reply``).

The rule files decide what is answered (FAQ, greeting, 人工 hand-off); this handler only turns the
chosen rule's content into a passive reply. App messages cannot carry a kf menu, so a menu is sent
as numbered text; a link becomes a one-article news reply.
"""

from __future__ import annotations

from bot.handlers.filters import Func
from bot.handlers.router import Router
from bot.inbound.context import Context
from rules.models import LinkReply, MenuReply, ReplyContent, TextReplyContent
from wecom_sdk.messages.callback import Message
from wecom_sdk.replies import Article, NewsReply, Reply, TextReply

__all__ = ["render_content", "router"]


def render_content(content: ReplyContent) -> Reply:
    """A reply rule's content as a passive reply of the self-built app."""
    if isinstance(content, TextReplyContent):
        return TextReply(content=content.text)
    if isinstance(content, MenuReply):
        lines = [content.head]
        lines += [f"{i}. {option.text}" for i, option in enumerate(content.options, 1)]
        if content.tail:
            lines.append(content.tail)
        return TextReply(content="\n".join(lines))
    if isinstance(content, LinkReply):
        article = Article(
            title=content.title,
            description=content.description,
            pic_url=content.pic_url,
            url=content.url,
        )
        return NewsReply(articles=(article,))
    raise TypeError(f"unknown reply content {type(content).__name__}")


def router() -> Router:
    """The reply-rules feature's router."""
    r = Router("reply_rules")
    chosen = Func(lambda msg, ctx: ctx.inspection is not None and ctx.inspection.reply is not None)

    @r.text(chosen)
    async def answer(msg: Message, ctx: Context) -> Reply | None:
        rule = ctx.inspection.reply if ctx.inspection is not None else None
        if rule is None:  # the filter already checked; this narrows the type
            return None
        if rule.handoff:
            ctx.log.info("hand-off requested by %s (rule %s)", msg.from_user, rule.name)
        return render_content(rule.reply)

    return r
