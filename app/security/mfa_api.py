"""FAB's JWT login (`POST /api/v1/security/login`) with the second factor.

A user who has enrolled, or whose role requires it, sends the current code
(or a recovery code) as `"totp"` in the same body; without it, or with a wrong
one, the answer is 401 with a translated message saying so, and the attempt
counts as a failed sign-in (rate-limited like a wrong password).
"""

from __future__ import annotations

from flask import Response, request
from flask_appbuilder.api import safe
from flask_appbuilder.const import (
    API_SECURITY_ACCESS_TOKEN_KEY,
    API_SECURITY_PROVIDER_DB,
    API_SECURITY_REFRESH_TOKEN_KEY,
)
from flask_appbuilder.security.api import SecurityApi as FabSecurityApi
from flask_appbuilder.security.schemas import login_post
from flask_appbuilder.views import expose
from flask_jwt_extended import create_access_token, create_refresh_token
from marshmallow import ValidationError


class SecurityApi(FabSecurityApi):
    """FAB's security API; its login also asks for the two-factor code when one is due.

    Same class name as FAB's, so the endpoint stays `SecurityApi.login`.
    """

    @expose("/login", methods=["POST"])
    @safe
    def login(self) -> Response:
        """Sign in with username, password and (when due) `totp`; return a JWT.
        ---
        post:
          description: >-
            Authenticate and get a JWT access (and refresh) token. Users with
            two-factor sign-in send the 6-digit code (or a recovery code) as totp.
          requestBody:
            required: true
            content:
              application/json:
                schema:
                  type: object
                  properties:
                    username: {type: string}
                    password: {type: string}
                    totp: {type: string, description: "two-factor code (when enrolled)"}
                    provider: {type: string, enum: [db, ldap]}
                    refresh: {type: boolean}
          responses:
            200:
              description: Authentication Successful
            400:
              $ref: '#/components/responses/400'
            401:
              $ref: '#/components/responses/401'
        """
        from app.security.mfa import api_refusal

        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return self.response_400(message="Request payload is not JSON")
        code = str(body.pop("totp", "") or "")
        try:
            payload = login_post.load(body)
        except ValidationError as error:
            return self.response_400(message=error.messages)
        sm = self.appbuilder.sm
        if payload["provider"] == API_SECURITY_PROVIDER_DB:
            user = sm.auth_user_db(payload["username"], payload["password"])
        else:
            user = sm.auth_user_ldap(payload["username"], payload["password"])
        if not user:
            return self.response_401()
        refusal = api_refusal(user, code)
        if refusal is not None:
            return self.response(401, message=refusal)
        tokens = {API_SECURITY_ACCESS_TOKEN_KEY: create_access_token(identity=str(user.id),
                                                                     fresh=True)}
        if payload.get("refresh"):
            tokens[API_SECURITY_REFRESH_TOKEN_KEY] = create_refresh_token(identity=str(user.id))
        return self.response(200, **tokens)
