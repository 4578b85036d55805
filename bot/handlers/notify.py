"""`notify …`: the asking user's own notification opt-ins and quiet hours."""

from bot.commands import NotifyQuiet, NotifySet, NotifyShow, NotifyTest
from bot.handlers.context import Request
from bot.reply import Reply
from integration import alerts, preferences


def show(command: NotifyShow | None, request: Request, note: str | None = None) -> Reply:
    data = preferences.snapshot(request.session, request.actor.id)
    lines = [note] if note else []
    lines.append("Your notifications (off until you turn them on):")
    for category, channels in data["preferences"].items():
        on = [channel for channel, enabled in channels.items() if enabled]
        lines.append(f"• {category}: {', '.join(on) if on else 'off'}")
    lines.append(f"Quiet hours: {data['quiet_hours'] or 'none'} (high-risk alerts break through)")
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
    zone = command.zone or request.zone or "UTC"
    preferences.set_quiet_hours(
        request.session, request.actor.id, command.span, actor=request.actor.email, at=request.now, zone=zone
    )
    note = (
        f"Quiet hours set to {'-'.join(command.span)} {zone}: other alerts wait and arrive as one message "
        "when they end."
        if command.span
        else "Quiet hours turned off."
    )
    return show(None, request, note)


def test(command: NotifyTest, request: Request) -> Reply:
    channels = alerts.queue_test(request.session, request.actor.id, request.now)
    keys = tuple(alerts.test_key(request.actor.id, channel, request.now) for channel in channels)
    if not channels:
        return Reply.refused(
            "You have no notifications on, so there is nothing to test. Turn one on first, "
            "e.g. `notify threat-high on email`."
        )
    return Reply(
        ok=True,
        text=f"Test alert queued on {' and '.join(channels)}.",
        data={"queued": channels},
        command="notify test",
        send_now=keys,
    )
