"""`risk list|set|reset` and `policy [set]`: the catalogue, and changes with an impact preview first."""

from bot.commands import PolicySet, PolicyShow, RiskList, RiskReset, RiskSet
from bot.handlers.context import Request
from bot.reply import Reply
from integration import drift, impact, tenant
from integration.catalogue import CATALOGUE
from integration.impact import Impact, RiskChange, RiskState
from integration.levels import RiskLevel, intune_threat_level


def risk_list(command: RiskList, request: Request) -> Reply:
    rows = tenant.classifications(request.session)
    data = [
        {"name": r.name, "category": r.category, "risk": r.risk.value, "default_risk": r.default_risk.value}
        for r in rows
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
    drifts = drift.current(request.session)
    if drifts:
        lines.append("Policy drift (Lookout's console reports a different level than mesbot wants):")
        lines += [f" ! {d.classification}: {d.change}" for d in drifts]
    drift_data = [
        {
            "name": d.classification,
            "reported": d.reported.value,
            "risk": d.wanted.value,
            "seen_at": tenant.stamp(d.seen_at),
            "change": d.change,
        }
        for d in drifts
    ]
    return Reply(
        ok=True,
        text="\n".join(lines),
        data={"classifications": data, "drift": drift_data},
        command="risk list",
    )


def risk_set(command: RiskSet, request: Request) -> Reply:
    state = impact.current(request.session)
    change = RiskChange({command.classification: command.level})
    current = state.levels[command.classification]
    what = f"{command.classification} {current.value} → {command.level.value}"
    yes = f"risk set {command.classification} {command.level.value} --yes"
    return _preview_or_apply(request, state, change, what, yes, command, "risk set")


def risk_reset(command: RiskReset, request: Request) -> Reply:
    state = impact.current(request.session)
    names = [command.classification] if command.classification else sorted(CATALOGUE)
    defaults = {name: CATALOGUE[name].default_risk for name in names}
    changes = {name: level for name, level in defaults.items() if state.levels[name] is not level}
    target = command.classification or "all"
    if command.classification:
        what = f"{target} {state.levels[target].value} → default {defaults[target].value}"
    else:
        what = f"{len(changes)} classification{'s' if len(changes) != 1 else ''} back to their defaults"
    yes = f"risk reset {target} --yes"
    return _preview_or_apply(request, state, RiskChange(changes), what, yes, command, "risk reset")


def policy_show(command: PolicyShow, request: Request) -> Reply:
    level = tenant.policy_level(request.session)
    return Reply(ok=True, text=_policy_text(level), data={"policy": _policy_data(level)}, command="policy")


def policy_set(command: PolicySet, request: Request) -> Reply:
    state = impact.current(request.session)
    current = state.policy
    change = RiskChange({}, policy=command.level)
    what = f"noncompliant at {current.value} → {command.level.value} or above"
    yes = f"policy set {command.level.value} --yes"
    reply = _preview_or_apply(request, state, change, what, yes, command, "policy set")
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
    request: Request,
    state: RiskState,
    change: RiskChange,
    what: str,
    yes: str,
    command: RiskSet | RiskReset | PolicySet,
    name: str,
) -> Reply:
    session = request.session
    if not state.changes_anything(change):
        return Reply(
            ok=True,
            text=f"Nothing to change: {what.split(' → ')[0]} is already set that way.",
            data={"applied": False, "preview": impact.ZERO.as_dict()},
            command=name,
        )
    if not command.confirmed:
        preview = impact.preview(session, change, state)
        return Reply(
            ok=True,
            text=f"Preview: {what}\n{_impact_text(preview, applied=False)}\n"
            f"Nothing has changed yet. To apply: `{yes}`",
            data={"preview": preview.as_dict()},
            command=name,
            confirm=yes,
        )
    applied = impact.apply(
        session, change, state, actor=request.actor.email, at=request.now, action=command.action
    )
    return Reply(
        ok=True,
        text=f"Applied: {what}\n{_impact_text(applied, applied=True)}",
        data={"applied": True, "preview": applied.as_dict()},
        command=name,
    )


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
