"""The hand-rolled peer: what a typical WeCom keyword bot does, without storage.

aiohttp + wechatpy ``WeChatCrypto.decrypt_message`` (signature check, AES decrypt, corp id check)
+ ``xmltodict.parse`` of the inner message + a plain substring scan over ~30 risk words, then 200
"success". No timestamp window, no dedupe, no durable write: ours must at least match it while
doing all three.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Sequence

import xmltodict
from aiohttp import web
from wechatpy.enterprise.crypto import WeChatCrypto
from wechatpy.enterprise.exceptions import InvalidCorpIdException
from wechatpy.exceptions import InvalidSignatureException

from bench.messages import CALLBACK_PATH, SAMPLE_AES_KEY, SAMPLE_CORP_ID, SAMPLE_TOKEN
from bench.servers import serve

__all__ = ["CRYPTO", "FLAGGED", "WORDS", "create_app", "main"]

# The sort of list such bots hard-code: complaints, regulators and media, staff misconduct.
WORDS = (
    "维权", "投诉", "12315", "315", "消协", "工商局", "市场监管", "举报", "曝光", "媒体",
    "律师", "起诉", "法院", "仲裁", "报警", "骗子", "诈骗", "欺诈", "虚假宣传", "假货",
    "退一赔三", "赔偿", "黑心", "坑人", "差评", "退款", "红包", "小费", "私下转账", "加微信",
)  # fmt: skip

CRYPTO = web.AppKey("crypto", WeChatCrypto)
FLAGGED = web.AppKey("flagged", Counter[str])


async def _callback(request: web.Request) -> web.Response:
    query = request.query
    try:
        xml = request.app[CRYPTO].decrypt_message(
            await request.read(), query["msg_signature"], query["timestamp"], query["nonce"]
        )
    except (KeyError, InvalidSignatureException, InvalidCorpIdException):
        return web.Response(status=403, text="bad signature")
    msg = xmltodict.parse(xml)["xml"]
    content = msg.get("Content") or ""
    if any(word in content for word in WORDS):
        # Counted only so tests can see the scan ran; a real bot would alert here.
        request.app[FLAGGED]["flagged"] += 1
    return web.Response(text="success")


def create_app(
    path: str = CALLBACK_PATH,
    token: str = SAMPLE_TOKEN,
    encoding_aes_key: str = SAMPLE_AES_KEY,
    corp_id: str = SAMPLE_CORP_ID,
) -> web.Application:
    """The peer app: ``POST {path}`` → decrypt, parse, scan → 200 "success"."""
    app = web.Application()
    app[CRYPTO] = WeChatCrypto(token, encoding_aes_key, corp_id)
    app[FLAGGED] = Counter()
    app.router.add_post(path, _callback)
    return app


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m bench.servers.peer``."""
    serve(create_app(), argv, __doc__ or "")


if __name__ == "__main__":
    main(sys.argv[1:])
