"""Every page of a schema, in zh, shows no English; and none overflows a phone.

The crawl is generated from the schema: for each entity its list, detail, add,
edit and chart pages, plus every link in the side menu, the system pages
(dashboard, audit, jobs, backups, security, the user forms, the profile) and
the error pages. A page fails when its visible text (and its tooltips,
placeholders, button values, delete confirmations and hidden menus/dialogs)
contains a Latin word that is not allowed: record data (every string value the
demo data put into the schema's text fields), the schema's own labels, codes
like SD-E101, brand names, units, URLs and e-mail addresses.

One live server per schema (fresh SQLite instance, `demo seed`); the session browser.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from app.schema.loader import load_spec
from tests.e2e.conftest import E2E_PASSWORD, ROOT, sign_in_page, start_console

pytestmark = pytest.mark.e2e

SCHEMAS: dict[str, Path | None] = {
    "crm": ROOT / "schema" / "crm.yaml",
    "library": ROOT / "schema" / "examples" / "library.yaml",
    "tiny": None,  # written by the test: a schema no template was made for
}
TINY_SCHEMA = """\
version: 1
app:
  title: {en: Asset Register, zh: 资产台账}
  default_locale: zh
entities:
  warehouse:
    label: {en: Warehouse, zh: 仓库}
    menu: {en: Places, zh: 场地}
    title: name
    fields:
      name: {type: string, max_length: 80, required: true, label: {en: Name, zh: 名称}}
      city:
        type: enum
        label: {en: City, zh: 城市}
        choices: {sh: {en: Shanghai, zh: 上海}, bj: {en: Beijing, zh: 北京}}
  asset:
    label: {en: Asset, zh: 资产}
    menu: {en: Assets, zh: 资产管理}
    title: name
    list: [name, warehouse, bought_on, value, in_use]
    search: [name]
    filters: [warehouse, in_use]
    fields:
      name: {type: string, max_length: 120, required: true, label: {en: Name, zh: 名称}}
      warehouse: {type: relation, to: warehouse, label: {en: Warehouse, zh: 所在仓库}}
      bought_on: {type: date, label: {en: Bought on, zh: 购入日期}}
      value: {type: decimal, precision: 12, scale: 2, label: {en: Value, zh: 价值}}
      in_use: {type: boolean, label: {en: In use, zh: 在用}}
      note: {type: text, label: {en: Note, zh: 备注}}
roles:
  keeper:
    label: {en: Keeper, zh: 保管员}
    grants:
      asset: [read, create, update]
      warehouse: [read]
"""
ARTIFACTS = ROOT / "tests" / "e2e" / "artifacts" / "zh"

# Words that are fine on a Chinese page: brands, formats, units, protocol names.
ALLOWED_WORDS = {
    "schemadesk",
    "echarts",
    "english",
    "admin",
    "csv",
    "xlsx",
    "xls",
    "json",
    "yaml",
    "api",
    "id",
    "url",
    "pdf",
    "utc",
    "ip",
    "ldap",
    "oid",
    "oauth",
    "totp",
    "webhook",
    "webhooks",
    "http",
    "https",
    "sql",
    "sqlite",
    "postgresql",
    "mariadb",
    "mysql",
    "redis",
    "excel",
    "px",
    "kb",
    "mb",
    "gb",
    "kg",
    "km",
    "cm",
    "mm",
    "ms",
    "qr",
    "sms",
    "iso",
    "utf",
    "bom",
    "hmac",
    "sha",
    "ua",
    "cny",
    "usd",
    "eur",
    "rmb",
    "x",
    "google",
    "microsoft",
    "authenticator",
    "github",
    "mfa",
    "2fa",
    "png",
    "svg",
    "jpg",
    "latin",
    "gbk",
    "cron",
}
URL_OR_EMAIL = re.compile(
    r"(https?://\S+|[\w.+-]+@[\w-]+(\.[\w-]+)+|/[\w\-./?=&%]+"
    r"|[\w.-]+\.(csv|xlsx|xls|json|tar|gz|zip|png|pdf|sql|sdbackup|yaml)\b)"
)  # or a file name
# Codes: SD-E101, BOO000034, words with digits, settings names like RETENTION_SCHEDULE.
CODE = re.compile(r"\b(SD-[EW]\d+|[A-Z]{2,}[-_]?\d[\w-]*|\w*\d\w*|[A-Z][A-Z0-9]*_[A-Z0-9_]+)\b")
SCHEMA_TOKEN = re.compile(r"\$\w+(\.\w+)*")  # $me, $me.department: the schema's syntax
WORD = re.compile(r"[A-Za-z][A-Za-z'’]*")
PEOPLE_COLUMNS = [
    ("ab_user", "first_name"),
    ("ab_user", "last_name"),
    ("ab_user", "username"),
    ("audit_log", "actor_name"),
    ("job_run", "user_name"),
    ("user_session", "user_agent"),
    ("login_log", "user_agent"),
]
TEXT_TYPES = {"string", "text", "email", "url", "phone", "richtext", "markdown", "json"}

COLLECT_JS = """
() => {
  // code, pre and kbd hold identifiers and YAML (keys such as follow_up): codes, not words
  const body = document.body.cloneNode(true);
  for (const el of body.querySelectorAll('code, pre, kbd, script, style')) el.remove();
  document.documentElement.appendChild(body);
  body.style.position = 'absolute';
  body.style.left = '-99999px';
  const text = body.innerText;
  body.remove();
  const parts = [document.title, text];
  for (const attr of ['title', 'placeholder', 'data-text'])
    for (const el of document.querySelectorAll('[' + attr + ']')) parts.push(el.getAttribute(attr));
  const buttons = 'input[type=submit], input[type=button], button[value]';
  for (const el of document.querySelectorAll(buttons)) parts.push(el.value);
  for (const el of document.querySelectorAll('.modal, .dropdown-menu, option, optgroup'))
    parts.push(el.textContent || el.label || '');
  for (const el of document.querySelectorAll('[onclick]')) {
    const m = el.getAttribute('onclick').match(/'([^']{4,})'\\s*\\)/g) || [];
    for (const s of m) if (!s.startsWith("'/")) parts.push(s);
  }
  return parts.concat(window.__sdConfirms || []).join('\\n');
}
"""
HOOK_CONFIRM = """
window.__sdConfirms = [];
window.confirm = (m) => { window.__sdConfirms.push(String(m)); return false; };
window.alert = (m) => { window.__sdConfirms.push(String(m)); };
"""


@dataclass
class Site:
    """A running console for one schema, its spec and the words its data may use."""

    name: str
    url: str
    spec: Any
    instance: Path
    data_words: set[str] = field(default_factory=set)
    pages: list[str] = field(default_factory=list)
    demo_logins: tuple[list[str], str | None] = ([], None)
    phrases: list[str] = field(default_factory=list)


def _seed(env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "demo", "seed", "--rows", "12", "--seed", "7"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _start(schema: Path, instance: Path) -> tuple[subprocess.Popen[bytes], str, dict[str, str]]:
    return start_console(instance, SCHEMA_PATH=str(schema), LANG="en_US.UTF-8")


def record_values(spec: Any, database: Path) -> set[str]:
    """The demo data's free-text values, removed whole from a page before it is checked.

    Whole values, not their words: the library's demo data is English prose, and
    allowing its words one by one would let UI words like "Edit" pass.
    """
    values: set[str] = set()
    with sqlite3.connect(database) as conn:
        for entity in spec.entities:
            columns = [
                f.column_name
                for f in entity.fields
                if f.type in TEXT_TYPES and not f.is_relation and not f.choices
            ]
            if not columns:
                continue
            quoted = ", ".join(f'"{c}"' for c in columns)
            try:
                rows = conn.execute(f'SELECT {quoted} FROM "{entity.name}"').fetchall()
            except sqlite3.Error:
                continue
            for row in rows:
                for value in row:
                    if isinstance(value, str) and WORD.search(value):
                        values.update(line.strip() for line in value.splitlines() if line.strip())
    return values


def people_phrases(database: Path) -> list[str]:
    """Names of people and browsers, removed whole from the page text before checking.

    Whole phrases, not words: the admin is "Admin User", and "User" alone on a
    page is English that must fail.
    """
    phrases: set[str] = set()
    with sqlite3.connect(database) as conn:
        for table, column in PEOPLE_COLUMNS:
            try:
                values = conn.execute(f'SELECT "{column}" FROM "{table}"').fetchall()
            except sqlite3.Error:
                continue
            phrases.update(str(v).strip() for (v,) in values if v and str(v).strip())
        for first, last in conn.execute("SELECT first_name, last_name FROM ab_user"):
            phrases.add(f"{first or ''} {last or ''}".strip())
    return sorted(phrases, key=len, reverse=True)


def schema_words(spec: Any) -> set[str]:
    """Latin words inside the schema's own zh labels (e.g. ISBN) and settings."""
    words: set[str] = set()

    def add(text: str | None) -> None:
        words.update(w.lower() for w in WORD.findall(text or ""))

    add(spec.title.zh)
    add(str(spec.timezone))
    for entity in spec.entities:
        add(entity.label.zh)
        add(entity.menu.zh)
        for f in entity.fields:
            add(f.label.zh)
            add(getattr(f, "currency", None))
            for choice in f.choices or ():
                add(spec_label_zh(choice))
        for chart in entity.charts or ():
            add(spec_label_zh(chart))
    for role in spec.roles:
        add(role.label.zh)
    return words


def spec_label_zh(item: Any) -> str:
    label = getattr(item, "label", None)
    return getattr(label, "zh", "") or ""


def slug(path: str) -> str:
    return re.sub(r"[^\w]+", "_", path)


def latin_words(text: str, allowed: set[str], phrases: list[str] | None = None) -> list[str]:
    """Latin words in `text` that are not allowed, in order of appearance."""
    text = URL_OR_EMAIL.sub(" ", text)
    text = SCHEMA_TOKEN.sub(" ", text)
    for phrase in phrases or ():
        text = text.replace(phrase, " ")
    text = CODE.sub(" ", text)
    return [w for w in WORD.findall(text) if w.lower().strip("'’") not in allowed]


def entity_pages(spec: Any, conn: sqlite3.Connection) -> list[str]:
    """List, detail, add, edit and charts pages of every entity (first record)."""
    pages = []
    for entity in spec.entities:
        base = f"/{entity.name}"
        pages += [f"{base}/list/", f"{base}/add"]
        try:
            row = conn.execute(f'SELECT id FROM "{entity.name}" ORDER BY id LIMIT 1').fetchone()
        except sqlite3.Error:
            row = None
        if row:
            pages += [f"{base}/show/{row[0]}", f"{base}/edit/{row[0]}"]
        if entity.charts:
            pages.append(f"{base}/charts/")
    return pages


def fab_role_pages(spec: Any, conn: sqlite3.Connection) -> list[str]:
    """The edit form of a role made on screen (not in the YAML): its permission picker."""
    yaml_roles = {r.name for r in spec.roles} | {"Admin"}
    for role_id, name in conn.execute("SELECT id, name FROM ab_role ORDER BY id"):
        if name not in yaml_roles:
            return [f"/roles/edit/{role_id}"]
    return []


SYSTEM_PAGES = [
    "/dashboard/",
    "/audit/list/",
    "/jobs/list/",
    "/backups/list/",
    "/users/list/",
    "/users/add",
    "/users/show/1",
    "/users/edit/1",
    "/roles/list/",
    "/roles/show/1",
    "/users/userinfo/",
    "/resetmypassword/form",
    "/security/matrix/",
    "/no-such-page-for-the-zh-test/",
    "/customer/show/999999999",
]


@pytest.fixture(scope="module", params=sorted(SCHEMAS))
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, browser: Any
) -> Iterator[Site]:
    name = request.param
    instance = tmp_path_factory.mktemp(f"zh-{name}")
    schema = SCHEMAS[name]
    if schema is None:
        schema = instance.parent / f"{instance.name}.yaml"
        schema.write_text(TINY_SCHEMA, encoding="utf-8")
    spec = load_spec(schema)
    proc, url, env = _start(schema, instance)
    try:
        seed_output = _seed(env)
        database = instance / "schemadesk.db"
        site = Site(name, url, spec, instance)
        site.data_words = schema_words(spec) | ALLOWED_WORDS
        site.phrases = sorted(
            set(people_phrases(database)) | record_values(spec, database), key=len, reverse=True
        )
        with sqlite3.connect(database) as conn:
            site.pages = entity_pages(spec, conn) + fab_role_pages(spec, conn)
        site.pages += SYSTEM_PAGES
        site.demo_logins = _demo_logins(seed_output)
        yield site
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _demo_logins(output: str) -> tuple[list[str], str | None]:
    """Usernames and the shared password printed by `demo seed`."""
    password = None
    names = []
    for line in output.splitlines():
        m = re.search(r"(?:password|密码)[^:：]*[:：]\s*(\S+)", line, re.I)
        if m:
            password = m.group(1)
        elif line.startswith("  ") and line.split():
            names.append(line.split()[0])
    return names, password


def _login(page: Any, url: str, username: str, password: str) -> None:
    sign_in_page(page, url, username, password)


def _menu_links(page: Any, url: str) -> list[str]:
    hrefs = page.eval_on_selector_all(
        ".sd-sidebar a[href], .sd-topbar a[href]", "els => els.map(e => e.getAttribute('href'))"
    )
    return [h for h in hrefs if h and h.startswith("/") and not h.startswith(("/lang/", "/logout"))]


def _entity_extras(page: Any, entity_names: set[str]) -> list[str]:
    """Other views an entity's list links to (kanban, calendar, import...), without ids."""
    hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
    extras = []
    for href in hrefs:
        m = re.fullmatch(r"/(\w+)/([a-z_]+)/?", (href or "").split("?")[0])
        if (
            m
            and m.group(1) in entity_names
            and m.group(2) not in {"list", "show", "edit", "delete", "add", "download", "export"}
        ):
            extras.append(href.split("?")[0])
    return extras


def crawl(site: Site, browser: Any, viewport: dict[str, int], check: Any) -> dict[str, Any]:
    """Visit every page once as admin in zh; `check(path, page)` returns a problem or None."""
    context = browser.new_context(viewport=viewport, locale="zh-CN")
    context.add_init_script(HOOK_CONFIRM)
    page = context.new_page()
    problems: dict[str, Any] = {}
    page.goto(f"{site.url}/lang/zh")  # the sign-in page, before signing in
    page.goto(f"{site.url}/login/")
    problem = check("/login/", page)
    if problem:
        problems["/login/ (signed out)"] = problem
    _login(page, site.url, "admin", E2E_PASSWORD)
    # A background export, so the job list has a finished run to show in words.
    page.goto(f"{site.url}/{site.spec.entities[0].name}/export?async=1&format=csv")
    page.goto(f"{site.url}/dashboard/")
    queue = list(dict.fromkeys(_menu_links(page, site.url) + site.pages))
    entity_names = {e.name for e in site.spec.entities}
    seen: set[str] = set()
    while queue:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.add(path)
        page.goto(site.url + path)
        page.wait_for_load_state("domcontentloaded")
        if path.endswith("/list/"):
            queue += [p for p in _entity_extras(page, entity_names) if p not in seen]
        problem = check(path, page)
        if problem:
            problems[path] = problem
    context.close()
    return problems


def test_every_page_is_chinese(site: Site, browser: Any) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def english_on(path: str, page: Any) -> list[str] | None:
        # The browser's own user agent is data on the sessions and sign-in log pages.
        agent = {w.lower() for w in WORD.findall(page.evaluate("navigator.userAgent"))}
        words = latin_words(page.evaluate(COLLECT_JS), site.data_words | agent, site.phrases)
        if words:
            shot = ARTIFACTS / f"{site.name}{slug(path)}.png"
            page.screenshot(path=str(shot), full_page=True)
            return sorted(set(words))
        return None

    problems = crawl(site, browser, {"width": 1400, "height": 900}, english_on)
    assert not problems, "English on zh pages:\n" + "\n".join(
        f"  {path}: {' '.join(words)}" for path, words in problems.items()
    )


def test_error_pages_are_translated_and_styled(site: Site, browser: Any) -> None:
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    _login(page, site.url, "admin", E2E_PASSWORD)
    response = page.goto(f"{site.url}/no-such-page-for-the-zh-test/")
    assert response.status == 404
    assert page.locator(".sd-error-page").count() == 1
    assert page.locator(".sd-sidebar").count() == 1  # our layout, menu included
    assert "页面不存在" in page.inner_text(".sd-error-page")
    assert not latin_words(page.evaluate(COLLECT_JS), site.data_words, site.phrases)
    # 403: a demo login whose role may not use the jobs page.
    names, password = site.demo_logins
    refused = 0
    for name in names:
        other = browser.new_context(locale="zh-CN").new_page()
        _login(other, site.url, name, password or "")
        response = other.goto(f"{site.url}/jobs/list/")
        if response.status == 403:
            refused += 1
            assert other.locator(".sd-error-page").count() == 1
            assert "没有权限" in other.inner_text(".sd-error-page")
            assert not latin_words(other.evaluate(COLLECT_JS), site.data_words, site.phrases)
        other.context.close()
    context.close()
    if names and site.name == "crm":
        assert refused, "no demo login was refused the jobs page: the 403 page went untested"


def test_no_page_scrolls_sideways_on_a_phone(site: Site, browser: Any) -> None:
    def overflow_on(path: str, page: Any) -> int | None:
        width = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        if width > 0:
            shot = ARTIFACTS / f"phone-{site.name}{slug(path)}.png"
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot))
            return width
        return None

    problems = crawl(site, browser, {"width": 390, "height": 844}, overflow_on)
    assert not problems, "Pages wider than a 390 px phone (extra px):\n" + "\n".join(
        f"  {path}: {width}" for path, width in problems.items()
    )


def test_allow_list_catches_english_but_not_data() -> None:
    allowed = {"acme"} | ALLOWED_WORDS
    assert latin_words("客户 Acme 已保存 SD-E101 admin@example.com https://x.org/a", allowed) == []
    assert latin_words("确定 Cancel 删除", allowed) == ["Cancel"]
    assert latin_words("共 12 条 records", allowed) == ["records"]
    assert latin_words("请设置 RETENTION_SCHEDULE（cron 表达式）", allowed) == []
    assert latin_words("导出 tag-20261124-011726-1.csv 完成", allowed) == []
    assert latin_words("行规则中的 $me 指向该记录", allowed) == []
    assert latin_words("欢迎 Admin User，User 列表", allowed, ["Admin User"]) == ["User"]
