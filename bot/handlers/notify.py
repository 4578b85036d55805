"""`notify …`: the asking user's own notification opt-ins and quiet hours."""

from bot.commands import NotifyQuiet, NotifySet, NotifyShow
from bot.handlers.context import Request
from bot.reply import Reply
from integration import preferences


def show(command: NotifyShow | None, request: Request, note: str | None = None) -> Reply:
    data = preferences.snapshot(request.session, request.actor.id)
    lines = [note] if note else []
    lines.append("Your notifications (off until you turn them on):")
    for category, channels in data["preferences"].items():
        on = [channel for channel, enabled in channels.items() if enabled]
        lines.append(f"• {category}: {', '.join(on) if on else 'off'}")
    lines.append(f"Quiet hours (UTC): {data['quiet_hours'] or 'none'}")
    return Reply(ok=True, text="\n".join(lines), data=data, command="notify")


def set_preferences(command: NotifySet, request: Request) -> Reply:
    preferences.set_preferences(
        request.session,
        request.actor.id,
        command.categories,
        command.channels,
        command.on,
        actor=request.actor.email,
        at=request.now,
    )
    what = "all categories" if len(command.categories) > 1 else command.categories[0]
    note = f"Turned {what} {'on' if command.on else 'off'} for {' and '.join(command.channels)}."
    return show(None, request, note)


def quiet(command: NotifyQuiet, request: Request) -> Reply:
    preferences.set_quiet_hours(
        request.session, request.actor.id, command.span, actor=request.actor.email, at=request.now
    )
    note = f"Quiet hours set to {'-'.join(command.span)} UTC." if command.span else "Quiet hours turned off."
    return show(None, request, note)
