"""`enrollment …`: counts by state and compliance, listings of pending/disconnected devices, and the
disconnected-days setting."""

from bot.commands import Enrollment, EnrollmentSettingsSet, EnrollmentSettingsShow
from bot.handlers.context import Request
from bot.reply import Reply
from integration import compliance, devices, enrollment, tenant
from integration.text import neutralise as n

LIST_LIMIT = 50


def handle(command: Enrollment, request: Request) -> Reply:
    session = request.session
    group = None if command.group is None else enrollment.find_group(session, command.group)
    scope = f'group "{n(group.name)}"' if group else None
    policy = tenant.policy_level(session)
    counts = compliance.enrollment_counts(session, tenant.risk_levels(session), policy, group)
    data: dict[str, object] = {"counts": counts.as_counts(), "compliance": counts.as_compliance()}
    lines = [
        f"Enrollment ({scope or 'all devices'}):",
        f"Pending {counts.pending:,} · Activated {counts.activated:,} "
        f"({counts.disconnected:,} disconnected) · Deactivated {counts.deactivated:,}",
        f"Compliance (noncompliant at {policy.value} or above): compliant {counts.compliant:,} · "
        f"noncompliant {counts.noncompliant:,} · pending {counts.pending:,}",
    ]
    if command.state is not None:
        rows, total = devices.listing(session, command.state, group, LIST_LIMIT)
        data["devices"] = [
            {
                "id": d.id,
                "name": d.name,
                "owner": d.owner_email,
                "platform": d.platform,
                "enrolled_at": tenant.stamp(d.enrolled_at),
                "last_checkin": tenant.stamp(d.checkin_time),
            }
            for d in rows
        ]
        data["devices_total"] = total
        since = "enrolled" if command.state == "pending" else "last check-in"
        lines.append(f"{command.state.capitalize()} devices ({total:,}):")
        lines += [
            f"• {n(d.owner_email)} · {n(d.name or 'Unnamed device')} · {n(d.platform)} · {n(d.id)} · {since} "
            f"{tenant.stamp(d.enrolled_at if command.state == 'pending' else d.checkin_time) or 'never'}"
            for d in rows
        ]
        if total > len(rows):
            lines.append(f"+{total - len(rows):,} more")
    return Reply(ok=True, text="\n".join(lines), data=data, command="enrollment")


def show_settings(command: EnrollmentSettingsShow, request: Request) -> Reply:
    days = tenant.disconnected_days(request.session)
    return Reply(
        ok=True,
        text=f"Devices are marked disconnected (and noncompliant) after {days} days without a check-in.",
        data={"enrollment_settings": {"disconnected_days": days}},
        command="enrollment settings",
    )


def set_settings(command: EnrollmentSettingsSet, request: Request) -> Reply:
    days = command.disconnected_days
    result = enrollment.set_disconnected_days(
        request.session, days, actor=request.actor.email, at=request.now
    )
    if result is None:
        text = f"Disconnected status is already {days} days; nothing changed."
    else:
        text = (
            f"Devices are now marked disconnected after {days} days without a check-in. "
            f"{result.disconnected:,} devices turned disconnected, {result.reconnected:,} protected again."
        )
    return Reply(
        ok=True,
        text=text,
        data={"enrollment_settings": {"disconnected_days": days}},
        command="enrollment settings",
    )
