"""The review web's login gate through HTTP: login, lockout, CSRF, roles, sessions, headers.

Each test runs the review sub-app on a bare parent app over a SQLite writer (sessions and
lockouts in the database); the lockout tests also run with them in the real Redis.
"""

from __future__ import annotations

import json
from http.cookies import SimpleCookie

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import Engine, select
from yarl import URL

from monitor.archive import GroupCommitWriter
from monitor.archive.audit import AuditEventRecord
from monitor.review.headers import CONTENT_SECURITY_POLICY
from monitor.review.models import ReviewerRecord
from monitor.review.services import ReviewServices
from monitor.review.settings import ReviewSettings
from tests.support.review import (
    FAST_HASHER,
    add_reviewer,
    csrf_of,
    login,
    review_services,
    review_test_app,
)
from tests.unit.monitor.review.conftest import FakeClock

ADMIN_PW = "admin-password-1"
ALICE_PW = "alice-password-1"
BAD_LOGIN = "用户名或密码错误"


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """SQLite only: the stores' own tests cover PostgreSQL."""
    return sqlite_url


@pytest.fixture
def settings() -> ReviewSettings:
    return ReviewSettings(secure_cookie="auto")


@pytest.fixture
async def services(
    writer: GroupCommitWriter, settings: ReviewSettings, clock: FakeClock
) -> ReviewServices:
    await add_reviewer(writer, "root", ADMIN_PW, "admin", hasher=FAST_HASHER)
    await add_reviewer(writer, "alice", ALICE_PW, hasher=FAST_HASHER)
    return review_services(writer, settings, clock=clock)


@pytest.fixture
async def client(aiohttp_client, services: ReviewServices) -> TestClient:
    return await aiohttp_client(review_test_app(services))


def audit_rows(engine: Engine, *actions: str) -> list[dict]:
    table = AuditEventRecord.__table__
    with engine.connect() as conn:
        rows = conn.execute(select(table).order_by(table.c.id)).mappings().all()
    return [dict(r) for r in rows if not actions or r["action"] in actions]


async def post_login(client: TestClient, username: str, password: str, **extra: str):
    page = await client.get("/review/login")
    form = {"csrf_token": csrf_of(await page.text()), "username": username, "password": password}
    return await client.post("/review/login", data={**form, **extra}, allow_redirects=False)


# ---- login required everywhere ---------------------------------------------------------------

GET_PAGES = ["/review/", "/review/admin/users", "/review/conversations/c1", "/review/nope"]
POSTS = ["/review/logout", "/review/admin/users", "/review/admin/users/alice/disable"]


@pytest.mark.parametrize("path", GET_PAGES)
async def test_get_without_session_redirects_to_login(client: TestClient, path: str) -> None:
    resp = await client.get(f"{path}?a=1", allow_redirects=False)
    assert resp.status == 302
    location = URL(resp.headers["Location"])
    assert location.path == "/review/login"
    assert location.query["next"] == f"{path}?a=1"
    landing = await client.get(resp.headers["Location"])
    assert 'name="next" value="' + path + '?a=1"' in await landing.text()


@pytest.mark.parametrize("path", POSTS)
async def test_post_without_session_is_403(client: TestClient, path: str) -> None:
    resp = await client.post(path, data={"csrf_token": "x" * 43}, allow_redirects=False)
    assert resp.status == 403


async def test_forged_session_cookie_is_no_session(client: TestClient) -> None:
    client.session.cookie_jar.update_cookies({"sentinel_review": "forged"})
    resp = await client.get("/review/", allow_redirects=False)
    assert resp.status == 302


# ---- login ------------------------------------------------------------------------------------


async def test_login_lands_on_next_and_is_audited(
    client: TestClient, engine: Engine, clock: FakeClock
) -> None:
    resp = await post_login(client, "alice", ALICE_PW, next="/review/conversations/c1?x=1")
    assert resp.status == 302
    assert resp.headers["Location"] == "/review/conversations/c1?x=1"
    home = await client.get("/review/")
    assert home.status == 200
    text = await home.text()
    assert "alice" in text and "退出登录" in text
    assert "账号管理" not in text  # admins only
    (row,) = audit_rows(engine, "login")
    assert (row["actor"], row["source"], row["target"]) == ("alice", "web", "alice")
    assert row["address"] == "127.0.0.1"
    with engine.connect() as conn:
        last = conn.execute(
            select(ReviewerRecord.__table__.c.last_login_at).where(
                ReviewerRecord.__table__.c.username == "alice"
            )
        ).scalar_one()
    assert last == clock.now


@pytest.mark.parametrize(
    "next_path",
    [
        "//evil.example/review/",
        "https://evil.example/review/",
        "/review/../admin",
        "/review/%2e%2e/x",
        "/reviewer/x",
        "/elsewhere",
        "/review/\\evil",
        "javascript:alert(1)",
        "/review",
        "",
    ],
)
async def test_next_outside_review_is_refused(client: TestClient, next_path: str) -> None:
    resp = await post_login(client, "alice", ALICE_PW, next=next_path)
    assert resp.status == 302
    assert resp.headers["Location"] == "/review/"


async def test_wrong_password_and_unknown_user_look_the_same(
    client: TestClient, engine: Engine, services: ReviewServices
) -> None:
    wrong = await post_login(client, "alice", "not-her-password")
    unknown = await post_login(client, "mallory", "whatever-password")
    await services.accounts.disable("alice", actor="root", source="cli")
    disabled = await post_login(client, "alice", ALICE_PW)
    bodies = []
    for resp in (wrong, unknown, disabled):
        assert resp.status == 401
        assert "sentinel_review" not in {c.key for c in resp.cookies.values()}
        text = await resp.text()
        assert BAD_LOGIN in text
        bodies.append(text.replace("alice", "NAME").replace("mallory", "NAME"))
    assert bodies[0] == bodies[1] == bodies[2]
    failed = audit_rows(engine, "login_failed")
    assert [(r["actor"], r["source"], r["address"]) for r in failed] == [
        ("alice", "web", "127.0.0.1"),
        ("mallory", "web", "127.0.0.1"),
        ("alice", "web", "127.0.0.1"),
    ]
    assert "not-her-password" not in json.dumps([str(r) for r in audit_rows(engine)])


async def test_login_form_input_is_escaped(client: TestClient) -> None:
    resp = await post_login(client, '<script>x</script>"', "whatever-password")
    text = await resp.text()
    assert "<script>x" not in text
    assert "&lt;script&gt;x&lt;/script&gt;&#34;" in text


async def test_login_rehashes_old_parameters(client: TestClient, engine: Engine) -> None:
    table = ReviewerRecord.__table__
    with engine.connect() as conn:
        before = conn.execute(select(table.c.password_hash).where(table.c.username == "root"))
        before_hash = before.scalar_one()
    # Stored with FAST_HASHER's parameters; the services verify with the same: no rehash ...
    await login(client, "root", ADMIN_PW)
    with engine.connect() as conn:
        same = conn.execute(select(table.c.password_hash).where(table.c.username == "root"))
        assert same.scalar_one() == before_hash


async def test_rehash_when_parameters_change(
    aiohttp_client, writer: GroupCommitWriter, engine: Engine, clock: FakeClock
) -> None:
    from argon2 import PasswordHasher

    await add_reviewer(
        writer,
        "old",
        "old-password-1",
        hasher=PasswordHasher(time_cost=1, memory_cost=512, parallelism=1),
    )
    services = review_services(writer, ReviewSettings(), clock=clock)
    client = await aiohttp_client(review_test_app(services))
    await login(client, "old", "old-password-1")
    table = ReviewerRecord.__table__
    with engine.connect() as conn:
        new_hash = conn.execute(select(table.c.password_hash).where(table.c.username == "old"))
        new_hash = new_hash.scalar_one()
    assert "m=1024," in new_hash  # FAST_HASHER's memory cost, not the old 512
    assert FAST_HASHER.verify(new_hash, "old-password-1")
    (row,) = audit_rows(engine, "login")
    assert json.loads(row["detail"]) == {"rehashed": True}
    # And the new hash works for the next login.
    client.session.cookie_jar.clear()
    await login(client, "old", "old-password-1")


# ---- lockout ----------------------------------------------------------------------------------


@pytest.fixture
async def any_backend_client(
    aiohttp_client, writer, redis_or_none, redis_prefix: str, clock: FakeClock
) -> TestClient:
    await add_reviewer(writer, "alice", ALICE_PW, hasher=FAST_HASHER)
    await add_reviewer(writer, "bob", "bob-password-1", hasher=FAST_HASHER)
    services = review_services(
        writer, ReviewSettings(), redis=redis_or_none, redis_prefix=redis_prefix, clock=clock
    )
    return await aiohttp_client(review_test_app(services))


async def test_lockout_per_account_and_expiry(
    any_backend_client: TestClient, engine: Engine, clock: FakeClock
) -> None:
    client = any_backend_client
    for _ in range(5):
        assert (await post_login(client, "alice", "wrong-password")).status == 401
        clock.advance(10)
    # Locked: even the right password is refused, without a word about the password.
    locked = await post_login(client, "alice", ALICE_PW)
    assert locked.status == 429
    assert "账号已锁定，请 15 分钟后再试" in await locked.text()
    assert "sentinel_review" not in {c.key for c in locked.cookies.values()}
    (row,) = audit_rows(engine, "login_locked")
    assert (row["actor"], row["address"]) == ("alice", "127.0.0.1")
    # (the address is locked as well now: 5 failures from it) - the lock lifts as they age out.
    clock.advance(900 - 50 - 1)
    assert (await post_login(client, "alice", ALICE_PW)).status == 429
    clock.advance(1)
    assert (await post_login(client, "alice", ALICE_PW)).status == 302


async def test_lockout_per_address(any_backend_client: TestClient, clock: FakeClock) -> None:
    client = any_backend_client
    for name in ("u1", "u2", "u3", "u4", "u5"):
        assert (await post_login(client, name, "wrong-password")).status == 401
    # bob never failed, but this address did five times.
    resp = await post_login(client, "bob", "bob-password-1")
    assert resp.status == 429
    assert "15 分钟" in await resp.text()
    clock.advance(900)
    assert (await post_login(client, "bob", "bob-password-1")).status == 302


# ---- CSRF -------------------------------------------------------------------------------------


async def test_login_without_csrf_token_is_403(client: TestClient) -> None:
    await client.get("/review/login")  # has the pre-login cookie, but posts no token
    form = {"username": "alice", "password": ALICE_PW}
    resp = await client.post("/review/login", data=form, allow_redirects=False)
    assert resp.status == 403
    resp = await client.post(
        "/review/login", data={**form, "csrf_token": "A" * 43}, allow_redirects=False
    )
    assert resp.status == 403


async def test_login_token_without_its_cookie_is_403(aiohttp_client, services) -> None:
    # A cross-site page can copy a token it saw, but cannot set the victim's cookie.
    first = await aiohttp_client(review_test_app(services))
    token = csrf_of(await (await first.get("/review/login")).text())
    other = await aiohttp_client(review_test_app(services))
    form = {"username": "alice", "password": ALICE_PW, "csrf_token": token}
    resp = await other.post("/review/login", data=form, allow_redirects=False)
    assert resp.status == 403


async def test_logout_needs_csrf_and_ends_session(client: TestClient, engine: Engine) -> None:
    csrf = await login(client, "alice", ALICE_PW)
    assert (await client.post("/review/logout", allow_redirects=False)).status == 403
    bad = await client.post("/review/logout", data={"csrf_token": "B" * 43})
    assert bad.status == 403
    assert (await client.get("/review/", allow_redirects=False)).status == 200  # still in
    resp = await client.post("/review/logout", data={"csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"] == "/review/login?done=logged_out"
    page = await client.get(resp.headers["Location"])
    assert "已退出登录" in await page.text()
    assert (await client.get("/review/", allow_redirects=False)).status == 302
    (row,) = audit_rows(engine, "logout")
    assert (row["actor"], row["source"], row["address"]) == ("alice", "web", "127.0.0.1")


async def test_done_shows_only_fixed_texts(client: TestClient) -> None:
    page = await client.get("/review/login", params={"done": "<b>pwned</b>"})
    text = await page.text()
    assert "pwned" not in text
    assert 'class="flash' not in text


async def test_session_csrf_token_is_not_the_login_one(client: TestClient) -> None:
    login_token = csrf_of(await (await client.get("/review/login")).text())
    session_token = await login(client, "alice", ALICE_PW)
    assert login_token != session_token
    resp = await client.post("/review/logout", data={"csrf_token": login_token})
    assert resp.status == 403


# ---- roles, accounts --------------------------------------------------------------------------


async def test_reviewer_gets_403_on_admin_pages(client: TestClient) -> None:
    csrf = await login(client, "alice", ALICE_PW)
    assert (await client.get("/review/admin/users")).status == 403
    form = {
        "csrf_token": csrf,
        "username": "eve",
        "password": "x" * 12,
        "password_confirm": "x" * 12,
        "role": "admin",
    }
    assert (await client.post("/review/admin/users", data=form)).status == 403
    assert (
        await client.post("/review/admin/users/root/disable", data={"csrf_token": csrf})
    ).status == 403


async def test_admin_adds_and_disables_accounts(
    client: TestClient, aiohttp_client, services, engine: Engine
) -> None:
    csrf = await login(client, "root", ADMIN_PW)
    page = await client.get("/review/admin/users")
    assert page.status == 200
    text = await page.text()
    assert "alice" in text and "添加账号" in text
    form = {
        "csrf_token": csrf,
        "username": "carol",
        "password": "carol-password",
        "password_confirm": "carol-password",
        "role": "reviewer",
    }
    # Without the token: 403, nothing added.
    no_token = {k: v for k, v in form.items() if k != "csrf_token"}
    assert (await client.post("/review/admin/users", data=no_token)).status == 403
    resp = await client.post("/review/admin/users", data=form, allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"] == "/review/admin/users?done=user_added"
    assert "账号已添加" in await (await client.get(resp.headers["Location"])).text()
    for changes, message in [
        ({}, "该用户名已存在"),
        ({"username": "dave", "password_confirm": "other-password"}, "两次输入的密码不一致"),
        (
            {"username": "dave", "password": "short", "password_confirm": "short"},
            "至少需要 10 个字符",
        ),
        ({"username": "dave", "role": "owner"}, "角色无效"),
        ({"username": "da ve"}, "用户名只能包含"),
    ]:
        bad = await client.post("/review/admin/users", data={**form, **changes})
        assert bad.status == 400, changes
        assert message in await bad.text()
    # carol can log in; then root disables her and her session ends at once.
    carol = await aiohttp_client(review_test_app(services))
    await login(carol, "carol", "carol-password")
    assert (await client.post("/review/admin/users/carol/disable", data={})).status == 403
    resp = await client.post(
        "/review/admin/users/carol/disable", data={"csrf_token": csrf}, allow_redirects=False
    )
    assert resp.status == 303
    assert (await carol.get("/review/", allow_redirects=False)).status == 302
    assert (await post_login(carol, "carol", "carol-password")).status == 401
    rows = audit_rows(engine, "user_add", "user_disable")
    assert [(r["action"], r["actor"], r["target"], r["source"]) for r in rows] == [
        ("user_add", "root", "carol", "web"),
        ("user_disable", "root", "carol", "web"),
    ]
    assert json.loads(rows[0]["detail"]) == {"role": "reviewer"}
    assert "carol-password" not in str(rows)
    # Own account and unknown ones.
    own = await client.post("/review/admin/users/root/disable", data={"csrf_token": csrf})
    assert own.status == 400
    assert "不能停用自己的账号" in await own.text()
    ghost = await client.post("/review/admin/users/ghost/disable", data={"csrf_token": csrf})
    assert ghost.status == 404


async def test_role_change_applies_at_once(client: TestClient, engine: Engine) -> None:
    await login(client, "alice", ALICE_PW)
    assert (await client.get("/review/admin/users")).status == 403
    table = ReviewerRecord.__table__
    with engine.begin() as conn:
        conn.execute(table.update().where(table.c.username == "alice").values(role="admin"))
    assert (await client.get("/review/admin/users")).status == 200


# ---- sessions and cookies ---------------------------------------------------------------------


async def test_idle_timeout_ends_session(client: TestClient, clock: FakeClock) -> None:
    await login(client, "alice", ALICE_PW)
    clock.advance(1700)
    assert (await client.get("/review/", allow_redirects=False)).status == 200
    clock.advance(1700)  # used 1700 s ago: within the 1800 s idle timeout
    assert (await client.get("/review/", allow_redirects=False)).status == 200
    clock.advance(1801)
    resp = await client.get("/review/", allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"].startswith("/review/login?next=")


def session_cookie(resp) -> SimpleCookie:
    cookies = SimpleCookie()
    for header in resp.headers.getall("Set-Cookie"):
        if header.startswith("sentinel_review="):
            cookies.load(header)
    return cookies


@pytest.mark.parametrize(
    "case",
    [
        ("auto", {}, False),
        ("auto", {"X-Forwarded-Proto": "https"}, True),
        ("auto", {"X-Forwarded-Proto": "http"}, False),
        ("always", {}, True),
        ("never", {"X-Forwarded-Proto": "https"}, False),
    ],
)
async def test_cookie_attributes(aiohttp_client, writer, clock, case: tuple) -> None:
    mode, headers, secure = case
    await add_reviewer(writer, "alice", ALICE_PW, hasher=FAST_HASHER)
    services = review_services(writer, ReviewSettings(secure_cookie=mode), clock=clock)
    client = await aiohttp_client(review_test_app(services))
    page = await client.get("/review/login", headers=headers)
    login_cookie = SimpleCookie(page.headers["Set-Cookie"])["sentinel_review_login"]
    assert bool(login_cookie["secure"]) is secure
    assert login_cookie["httponly"] is True
    # The test client talks plain http, so it would not send a Secure cookie back: send it.
    client.session.cookie_jar.clear()
    form = {"csrf_token": csrf_of(await page.text()), "username": "alice", "password": ALICE_PW}
    cookie = {"Cookie": f"sentinel_review_login={login_cookie.value}"}
    resp = await client.post(
        "/review/login", data=form, headers={**headers, **cookie}, allow_redirects=False
    )
    assert resp.status == 302
    morsel = session_cookie(resp)["sentinel_review"]
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "Lax"
    assert morsel["path"] == "/review"
    assert bool(morsel["secure"]) is secure
    assert len(morsel.value) >= 40


# ---- headers ----------------------------------------------------------------------------------

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


async def test_security_headers_on_every_page(client: TestClient) -> None:
    pages = [
        await client.get(p, allow_redirects=False)
        for p in ["/review/login", "/review/", "/review/nope"]
    ]
    pages.append(await client.post("/review/logout", allow_redirects=False))  # 403
    csrf = await login(client, "alice", ALICE_PW)
    for path in ["/review/", "/review/admin/users", "/review/nope"]:
        pages.append(await client.get(path, allow_redirects=False))
    pages.append(
        await client.post("/review/logout", data={"csrf_token": csrf}, allow_redirects=False)
    )
    assert [p.status for p in pages] == [200, 302, 302, 403, 200, 403, 404, 302]
    for resp in pages:
        for name, value in SECURITY_HEADERS.items():
            assert resp.headers.get(name) == value, (resp.url, name)
        assert resp.headers["Cache-Control"] == "no-store"
    css = await client.get("/review/static/review.css")
    assert css.status == 200
    assert css.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "font-family" in await css.text()


async def test_pages_have_no_inline_script_or_external_resources(client: TestClient) -> None:
    await login(client, "root", ADMIN_PW)
    for path in ["/review/login", "/review/", "/review/admin/users"]:
        text = (await (await client.get(path)).text()).lower()
        assert "<script" not in text and " on" + "click" not in text and "style=" not in text
        assert "http://" not in text and "https://" not in text


async def test_static_needs_no_login_but_pages_do(client: TestClient) -> None:
    assert (await client.get("/review/static/review.css")).status == 200
    assert (await client.get("/review/static/../app.py", allow_redirects=False)).status in (
        302,
        403,
        404,
    )


def test_review_app_is_a_web_application(services) -> None:
    assert isinstance(review_test_app(services), web.Application)


async def test_redis_down_is_503_not_a_login_page(aiohttp_client, writer, clock) -> None:
    import redis.asyncio as aioredis

    from tests.support.app import free_port

    down = aioredis.Redis(port=free_port(), socket_connect_timeout=0.5)
    services = review_services(writer, ReviewSettings(), redis=down, clock=clock)
    client = await aiohttp_client(review_test_app(services))
    client.session.cookie_jar.update_cookies({"sentinel_review": "some-token"})
    resp = await client.get("/review/", allow_redirects=False)
    assert resp.status == 503
    assert "登录服务暂时不可用" in await resp.text()
    assert resp.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    await down.aclose()
