"""A backup's note in the reader's language.

The console writes a few notes itself ("scheduled", "before restore of X",
"before schema apply: ..."); the manifest keeps them as written (older files
and the CLI read them), and the backups page shows them translated. A note an
operator typed is shown as typed.
"""

from __future__ import annotations

import re

from markupsafe import Markup, escape

from app.i18n import N_, gettext

SCHEDULED = "scheduled"
_RESTORE = re.compile(r"^before restore of (?P<file>.+)$")
_SCHEMA_APPLY = re.compile(r"^before schema apply: ?(?P<detail>.*)$", re.S)


def note_text(note: str | None) -> str:
    """Return `note` for display: the console's own notes translated."""
    if not note:
        return ""
    if note == SCHEDULED:
        return gettext(N_("Scheduled backup"))
    match = _RESTORE.match(note)
    if match:
        return gettext(N_("Taken before restoring %(file)s"), file=match["file"])
    match = _SCHEMA_APPLY.match(note)
    if match:
        return gettext(N_("Taken before a schema update: %(detail)s"), detail=match["detail"])
    return note


def keys_notice(html: bool = False) -> str:
    """The one line under every backup: the subject keys are not in it, and how to keep them
    (`html`: the command and the setting as code, for the backups page)."""
    text = gettext(N_("Backups do not contain the data subjects' keys (so an erasure reaches "
                      "old backups too): keep them with %(command)s, stored apart from the "
                      "backups, and keep the instance key (%(setting)s)."),
                   command="\x00", setting="\x01")
    command, setting = "schemadesk keys export FILE", "FIELD_ENCRYPTION_KEYS"
    if not html:
        return text.replace("\x00", f"`{command}`").replace("\x01", setting)
    return Markup(escape(text).replace("\x00", Markup(f"<code>{command}</code>"))
                  .replace("\x01", Markup(f"<code>{setting}</code>")))
