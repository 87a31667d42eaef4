"""Every string of ours is translated into Chinese, and the compiled catalog is current."""

from __future__ import annotations

from babel.support import Translations

from app.i18n_catalog import MO, TRANSLATIONS, extract, load_po, missing_translations


def test_no_untranslated_msgid() -> None:
    missing = missing_translations()
    assert missing == [], (
        f"{len(missing)} msgid(s) lack a zh_CN translation: run `python -m app.i18n_catalog`, "
        f"translate them in translations/zh_CN, and run it again. First: {missing[:10]}"
    )


def test_compiled_catalog_matches_po() -> None:
    with MO.open("rb") as fh:
        compiled = Translations(fh)
    po = load_po()
    for message in po:
        if message.id and isinstance(message.id, str) and message.string:
            assert compiled.gettext(message.id) == message.string, message.id


def test_catalog_lives_in_translations_zh_cn() -> None:
    assert (TRANSLATIONS / "zh_CN" / "LC_MESSAGES" / "messages.po").exists()
    assert len(list(extract())) > 50


def test_console_pages_use_our_chinese_catalog(sqlite_admin_client) -> None:  # noqa: ANN001
    po = load_po()
    created_at = po.get("Created at").string
    assert created_at
    sqlite_admin_client.post("/customer/add", data={"name": "i18n", "kind": "company",
                                                    "points": "0"})
    sqlite_admin_client.get("/lang/zh")
    page = sqlite_admin_client.get("/customer/show/1").data.decode()
    assert created_at in page
    sqlite_admin_client.get("/lang/en")
