"""The shape of a signed Slack request, checked before Bolt dispatches it. Bolt indexes into what it
parses (`body["actions"][0]["action_id"]`, `"id" in user`…) and answers a wrong type with a 500 and a
traceback; a request of the wrong shape is answered 400 instead, with the reason and never the body."""

from typing import Any

from slack_bolt.request.internals import parse_body

# Top-level fields Slack sends as objects (Bolt also accepts a bare ID string for these).
OBJECTS_OR_IDS = ("team", "enterprise", "channel")
OBJECTS = ("container", "message", "view", "event", "state")


def shielded(body: str, content_type: str | None) -> str:
    """The body with the word "payload" inside form values percent-encoded.

    Bolt reads any form body that merely *contains* "payload" as an interaction and looks for a
    `payload=` field, so `/lookout status payload@contoso.example` would reach no listener (404).
    `%70ayload` decodes to the same text and no longer matches; the body was verified already.
    """
    if (content_type and content_type.split(";")[0] == "application/json") or body.startswith("{"):
        return body
    if "payload" not in body or any(pair.startswith("payload=") for pair in body.split("&")):
        return body
    return body.replace("payload", "%70ayload")


def problem(body: str, content_type: str | None) -> str | None:
    """What is wrong with the request's shape, or None when Bolt may have it."""
    parsed: Any  # Bolt's type says dict; a JSON list or string is what this guards against
    try:
        parsed = parse_body(body, content_type.split(";")[0] if content_type else None)
    except ValueError:  # JSON that does not parse, in the body or in `payload=`
        return "the payload is not JSON"
    return shape(parsed)


def shape(parsed: Any) -> str | None:
    """What is wrong with a parsed body's shape, or None when Bolt may have it."""
    if not isinstance(parsed, dict):
        return "the payload is not a JSON object"
    return _fields(parsed) or _actions(parsed) or _event(parsed)


def _fields(body: dict[str, Any]) -> str | None:
    if "type" in body and not isinstance(body["type"], str):
        return "`type` is not a string"
    user = body.get("user")
    if user is not None and not (isinstance(user, dict) and isinstance(user.get("id"), str)):
        return "`user` is not an object with a string `id`"
    for name in OBJECTS_OR_IDS:
        if body.get(name) is not None and not isinstance(body[name], dict | str):
            return f"`{name}` is not an object"
    for name in OBJECTS:
        if body.get(name) is not None and not isinstance(body[name], dict):
            return f"`{name}` is not an object"
    if "response_url" in body and not isinstance(body["response_url"], str):
        return "`response_url` is not a string"
    authorizations = body.get("authorizations")
    if authorizations is not None and not (
        isinstance(authorizations, list) and all(isinstance(a, dict) for a in authorizations)
    ):
        return "`authorizations` is not a list of objects"
    return None


def _actions(body: dict[str, Any]) -> str | None:
    if body.get("type") != "block_actions":
        return None
    actions = body.get("actions")
    if not isinstance(actions, list) or not actions:
        return "`actions` is not a non-empty list"
    if not all(isinstance(a, dict) and isinstance(a.get("action_id"), str) for a in actions):
        return "an action is not an object with a string `action_id`"
    return None


def _event(body: dict[str, Any]) -> str | None:
    event = body.get("event")
    if body.get("type") == "event_callback" and not (
        isinstance(event, dict) and isinstance(event.get("type"), str)
    ):
        return "`event` is not an object with a string `type`"
    return None
