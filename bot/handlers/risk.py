"""`risk list|set|reset` and `policy [set]`: the catalogue, and changes with an impact preview first."""

from sqlmodel import col, select

from bot.commands import PolicySet, PolicyShow, RiskList, RiskReset, RiskSet
from bot.handlers.context import Request
from bot.reply import Reply
from integration import impact, tenant
from integration.catalogue import CATALOGUE
from integration.impact import Impact, RiskChange
from integration.levels import RiskLevel, intune_threat_level
from storage.models import Classification


def risk_list(command: RiskList, request: Request) -> Reply:
    query = select(Classification).order_by(col(Classification.category), col(Classification.name))
    rows = request.session.exec(query).all()
    data = [
        {"name": r.name, "category": r.category, "risk": r.risk, "default_risk": r.default_risk} for r in rows
    ]
    lines = [
        "Risk levels (* = changed from the default; defaults are mesbot's except OUT_OF_DATE_OS, Lookout's):"
    ]
    category = None
    for row in data:
        if row["category"] != category:
            category = row["category"]
            lines.append(f"{category}:")
        mark = "*" if row["risk"] != row["default_risk"] else " "
        lines.append(f" {mark} {row['name']}: {row['risk']} (default {row['default_risk']})")
    return Reply(ok=True, text="\n".join(lines), data={"classifications": data}, command="risk list")


def risk_set(command: RiskSet, request: Request) -> Reply:
    change = RiskChange({command.classification: command.level})
    current = tenant.risk_levels(request.session)[command.classification]
    what = f"{command.classification} {current.value} → {command.level.value}"
    yes = f"risk set {command.classification} {command.level.value} --yes"
    return _preview_or_apply(request, change, what, yes, command.confirmed, "risk set", "risk.set")


def risk_reset(command: RiskReset, request: Request) -> Reply:
    levels = tenant.risk_levels(request.session)
    names = [command.classification] if command.classification else sorted(CATALOGUE)
    defaults = {name: CATALOGUE[name].default_risk for name in names}
    changes = {name: level for name, level in defaults.items() if levels[name] is not level}
    target = command.classification or "all"
    if command.classification:
        what = f"{target} {levels[target].value} → default {defaults[target].value}"
    else:
        what = f"{len(changes)} classification{'s' if len(changes) != 1 else ''} back to their defaults"
    yes = f"risk reset {target} --yes"
    return _preview_or_apply(
        request, RiskChange(changes), what, yes, command.confirmed, "risk reset", "risk.reset"
    )


def policy_show(command: PolicyShow, request: Request) -> Reply:
    level = tenant.policy_level(request.session)
    return Reply(ok=True, text=_policy_text(level), data={"policy": _policy_data(level)}, command="policy")


def policy_set(command: PolicySet, request: Request) -> Reply:
    current = tenant.policy_level(request.session)
    change = RiskChange({}, policy=command.level)
    what = f"noncompliant at {current.value} → {command.level.value} or above"
    reply = _preview_or_apply(
        request,
        change,
        what,
        f"policy set {command.level.value} --yes",
        command.confirmed,
        "policy set",
        "policy.set",
    )
    level = command.level if reply.data.get("applied") else current
    return Reply(
        ok=True,
        text=f"{reply.text}\n{_policy_text(level)}",
        data={**reply.data, "policy": _policy_data(level)},
        command=reply.command,
        confirm=reply.confirm,
    )


def _policy_data(level: RiskLevel) -> dict[str, str]:
    return {"noncompliant_at": level.value, "intune_threat_level": intune_threat_level(level)}


def _policy_text(level: RiskLevel) -> str:
    intune = intune_threat_level(level).capitalize()
    return (
        f"Devices are noncompliant with an open threat at {level.value} risk or above "
        f'(Intune: "Require the device to be at or under the Device Threat Level" = {intune}).'
    )


def _preview_or_apply(
    request: Request, change: RiskChange, what: str, yes: str, confirmed: bool, command: str, action: str
) -> Reply:
    session = request.session
    unchanged = not _changes_anything(request, change)
    if unchanged:
        zero = Impact(0, 0, 0)
        return Reply(
            ok=True,
            text=f"Nothing to change: {what.split(' → ')[0]} is already set that way.",
            data={"applied": False, "preview": zero.as_dict()},
            command=command,
        )
    if not confirmed:
        preview = impact.preview(session, change)
        return Reply(
            ok=True,
            text=f"Preview: {what}\n{_impact_text(preview, applied=False)}\n"
            f"Nothing has changed yet. To apply: `{yes}`",
            data={"preview": preview.as_dict()},
            command=command,
            confirm=yes,
        )
    applied = impact.apply(session, change, actor=request.actor.email, at=request.now, action=action)
    return Reply(
        ok=True,
        text=f"Applied: {what}\n{_impact_text(applied, applied=True)}",
        data={"applied": True, "preview": applied.as_dict()},
        command=command,
    )


def _changes_anything(request: Request, change: RiskChange) -> bool:
    levels = tenant.risk_levels(request.session)
    if any(levels[name] is not level for name, level in change.levels.items()):
        return True
    return change.policy is not None and change.policy is not tenant.policy_level(request.session)


def _impact_text(result: Impact, applied: bool) -> str:
    if applied:
        return (
            f"{result.newly_noncompliant:,} devices turned noncompliant, {result.newly_compliant:,} turned "
            f"compliant; {result.open_threats:,} open threats were re-rated."
        )
    return (
        f"{result.newly_noncompliant:,} devices would turn noncompliant, "
        f"{result.newly_compliant:,} would turn compliant; "
        f"{result.open_threats:,} open threats would be re-rated."
    )
