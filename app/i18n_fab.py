"""Flask-AppBuilder's own texts that its zh catalog lacks (or marks fuzzy).

Listing them here puts them into our catalog (the extractor reads app/ only);
our catalog is loaded after FAB's, so our translation wins on FAB's screens.
Texts FAB does not mark for translation at all are fixed by overriding the
template instead (app/templates/appbuilder/).
"""

from __future__ import annotations

from app.i18n import N_

FAB_MESSAGES = (
    N_("Database Error"),
    N_(
        "Must have at least two capital letters, one special character, two digits, three lower "
        "case letters and a minimal length of 10."
    ),
    N_("Contains (insensitive)"),
    N_("In"),
    N_("Not In"),
    N_("Either select a role or a group"),
    N_("List Groups"),
    N_("Edit User Information"),
    N_("User information changed"),
    N_("Groups"),
    N_("The user's password for authentication"),
    N_("User(s) exists in the role, cannot delete"),
    N_("Show Group"),
    N_("Add Group"),
    N_("Edit Group"),
    N_("User(s) exists in the group, cannot delete"),
    N_("Add"),
    N_("Edit"),
    N_("Show"),
    N_("Delete"),
    N_("Are you sure you want to delete this item?"),
    N_("Not a valid choice"),
    N_("Start with"),
    N_("It's not a good policy to remove a user, just make it inactive"),
    N_("Enter your OpenID Username"),
    N_("Please use a good password policy, this application does not check this for you"),
    N_(
        "The user group on the application, this will associate with a list of roles "
        "associated with the group"
    ),
    N_("User confirmation needed"),
    N_("Cancel"),
    N_("OK"),
)
