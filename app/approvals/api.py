"""The approvals API: `GET /api/v1/approvals/`, `POST /api/v1/approvals/<id>/approve|reject`.

JWT like the entity APIs; the same `service.decide` as the inbox, so the same
rules (current level's approver, never the submitter, must read the record).
"""

from __future__ import annotations

import functools
from typing import Any

from flask import request
from flask_appbuilder.api import BaseApi, expose, safe
from flask_jwt_extended import verify_jwt_in_request
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt.exceptions import PyJWTError

from app.approvals import service
from app.i18n import N_, current_lang, gettext
from app.records.scope import current_user_record
from app.records.service import RecordError


def jwt_user(func: Any) -> Any:
    """Answer 401 without a valid JWT; pass the signed-in account on."""

    @functools.wraps(func)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            verify_jwt_in_request()
        except (JWTExtendedException, PyJWTError):
            return self.response_401()
        user = current_user_record()
        if user is None or not getattr(user, "is_active", True):
            return self.response_401()
        return func(self, user, *args, **kwargs)

    return wrapper


class ApprovalsApi(BaseApi):
    """我的审批 over JSON."""

    resource_name = "approvals"
    openapi_spec_tag = "Approvals"

    @expose("/", methods=["GET"])
    @safe
    @jwt_user
    def inbox(self, user: Any) -> Any:
        """The requests waiting for me and the ones I submitted.
        ---
        get:
          description: >-
            Approval requests (审批) waiting for the signed-in user (`waiting`),
            with the count, and the requests they submitted (`submitted`).
          responses:
            200:
              description: The inbox
            401:
              $ref: '#/components/responses/401'
        """
        lang = current_lang()
        waiting = service.inbox(user.id, lang)
        return self.response(200, count=len(waiting), waiting=waiting,
                             submitted=service.submitted(user.id, lang))

    @expose("/<int:request_id>/<decision>", methods=["POST"])
    @safe
    @jwt_user
    def decide(self, user: Any, request_id: int, decision: str) -> Any:
        """Approve or reject a request (`comment` required to reject).
        ---
        post:
          description: >-
            Decide the current level of an approval request as the signed-in
            approver; the last approval runs the workflow step.
          parameters:
          - in: path
            schema:
              type: integer
            name: request_id
          - in: path
            schema:
              type: string
              enum: [approve, reject]
            name: decision
          requestBody:
            required: false
            content:
              application/json:
                schema:
                  type: object
                  properties:
                    comment:
                      type: string
          responses:
            200:
              description: The decision was recorded; the request as it is now
            401:
              $ref: '#/components/responses/401'
            403:
              description: Not an approver of the current level, or the submitter
            404:
              $ref: '#/components/responses/404'
            409:
              description: Already decided
            422:
              $ref: '#/components/responses/422'
        """
        if decision not in service.DECISIONS:
            return self.response_404()
        body = request.get_json(silent=True) if request.data else {}
        comment = body.get("comment") if isinstance(body, dict) else None
        if not isinstance(body, dict) or not isinstance(comment, str | None):
            return self.response_422(message={"_body": [gettext(N_(
                'Send a JSON object, optionally with a "comment" text.'))]})
        try:
            view = service.decide(request_id, decision, comment, user)
        except RecordError as exc:
            return self.response(exc.status, message=exc.message, errors=exc.errors)
        return self.response(200, result=view)


def register(appbuilder: Any) -> None:
    appbuilder.add_api(ApprovalsApi)
