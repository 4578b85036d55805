"""`connector …`: show the connector with its open errors; change heartbeat, error e-mail, groups, sync."""

from typing import Any

from bot.commands import ConnectorGroup, ConnectorSet, ConnectorShow, ConnectorSync
from bot.handlers.context import Request
from bot.reply import Reply
from integration import connector
from integration.text import neutralise as n


def show(command: ConnectorShow, request: Request) -> Reply:
    return _reply(request, None)


def set_field(command: ConnectorSet, request: Request) -> Reply:
    changed = connector.set_field(
        request.session, command.field, command.value, actor=request.actor.email, at=request.now
    )
    label = {"heartbeat_minutes": "Heartbeat frequency", "error_email": "Error-report e-mail"}[command.field]
    unit = " minutes" if command.field == "heartbeat_minutes" else ""
    note = (
        f"{label} set to {command.value}{unit}." if changed else f"{label} is already {command.value}{unit}."
    )
    return _reply(request, note)


def group(command: ConnectorGroup, request: Request) -> Reply:
    kwargs: dict[str, Any] = {"actor": request.actor.email, "at": request.now}
    if command.add:
        name = connector.add_group(request.session, command.name, **kwargs)
        note = f'Added enrollment group "{n(name)}": its members\' devices will appear as pending.'
    else:
        name = connector.remove_group(request.session, command.name, **kwargs)
        note = f'Removed enrollment group "{n(name)}".'
    return _reply(request, note)


def sync(command: ConnectorSync, request: Request) -> Reply:
    changed = connector.set_sync(
        request.session, command.which, command.on, actor=request.actor.email, at=request.now
    )
    state = "on" if command.on else "off"
    note = f"{command.which.capitalize()} status sync is {'now' if changed else 'already'} {state}."
    if not command.on:
        note += (
            " Warning: Lookout needs both device and threat status sync on, or Intune acts on stale state."
        )
    return _reply(request, note)


def _reply(request: Request, note: str | None) -> Reply:
    data = connector.snapshot(request.session)
    lines = [note] if note else []
    lines += [
        f"Connector: {data['state']} · last heartbeat {data['last_heartbeat'] or 'never'} "
        f"· heartbeat every {data['heartbeat_minutes']} minutes",
        "Enrollment groups: " + (", ".join(f'"{n(g)}"' for g in data["enrollment_groups"]) or "none"),
        f"State sync: device {'on' if data['device_status_sync'] else 'OFF'}, "
        f"threat {'on' if data['threat_status_sync'] else 'OFF'}",
        f"Error reports to: {data['error_email'] or 'nobody (set with `connector set error-email ADDRESS`)'}",
    ]
    errors = data["errors"]
    lines.append(f"Open errors: {len(errors)}" if errors else "Open errors: none")
    # error messages quote upstream text (API errors, group names from the directory)
    lines += [f"• {n(e['message'])} (×{e['count']}, last {e['last_seen']})" for e in errors]
    return Reply(ok=True, text="\n".join(lines), data={"connector": data}, command="connector")
