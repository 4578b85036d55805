"""The tenant's one-row settings and the classification catalogue in the store."""

from datetime import datetime
from typing import TypeVar, overload

from sqlmodel import Session, col, select

from integration.catalogue import CATALOGUE
from integration.levels import RiskLevel
from storage.models import (
    Classification,
    CompliancePolicy,
    Connector,
    EnrollmentSettings,
    Subscription,
)
from storage.prepared import Prepared

# A set of classifications is a 64-bit integer (`Device.open_classifications`), positive: 63 bits.
MAX_CLASSIFICATIONS = 63

_Row = TypeVar("_Row", Subscription, Connector, EnrollmentSettings, CompliancePolicy)


def ensure_defaults(session: Session) -> None:
    """Create the settings rows and any catalogue entry the store lacks; never overwrite."""
    for model in (Subscription, Connector, EnrollmentSettings, CompliancePolicy):
        if session.get(model, 1) is None:
            session.add(model(id=1))
    known = dict(session.exec(select(Classification.name, Classification.bit)).all())
    used = set(known.values())
    free = (1 << n for n in range(MAX_CLASSIFICATIONS) if 1 << n not in used)
    for entry in CATALOGUE.values():
        if entry.name not in known:
            bit = next(free, None)
            if bit is None:
                raise RuntimeError(f"over {MAX_CLASSIFICATIONS} classifications: widen Classification.bit")
            risk = entry.default_risk
            session.add(
                Classification(
                    name=entry.name, category=entry.category, default_risk=risk, risk=risk, bit=bit
                )
            )
    session.flush()


def classification_bits(session: Session) -> dict[str, int]:
    """Every classification's bit (`Classification.bit`)."""
    return dict(session.exec(select(Classification.name, Classification.bit)).all())


def _one(session: Session, model: type[_Row]) -> _Row:
    row = session.get(model, 1)
    if row is None:
        raise LookupError(f"{model.__name__} row missing: run `mesbot db upgrade`")
    return row


def subscription(session: Session) -> Subscription:
    return _one(session, Subscription)


def connector(session: Session) -> Connector:
    return _one(session, Connector)


def enrollment_settings(session: Session) -> EnrollmentSettings:
    return _one(session, EnrollmentSettings)


def policy_level(session: Session) -> RiskLevel:
    # A one-column read, compiled once, on the session's connection: most commands need it, and
    # loading the row as an object (the identity map keeps it only weakly) costs five times as much.
    # Every change to the policy is an UPDATE statement, so there is never an unflushed one to miss.
    found = _POLICY.all(session)
    if not found:
        raise LookupError("CompliancePolicy row missing: run `mesbot db upgrade`")
    return RiskLevel(found[0][0])


_POLICY = Prepared(select(CompliancePolicy.noncompliant_at).where(CompliancePolicy.id == 1))


def disconnected_days(session: Session) -> int:
    """The disconnected threshold, read like `policy_level` (status quotes it for every disconnected
    device). It reads what is flushed: after changing `enrollment_settings(…)`, flush first."""
    found = _DISCONNECTED_DAYS.all(session)
    if not found:
        raise LookupError("EnrollmentSettings row missing: run `mesbot db upgrade`")
    return int(found[0][0])


_DISCONNECTED_DAYS = Prepared(select(EnrollmentSettings.disconnected_days).where(EnrollmentSettings.id == 1))


def risk_levels(session: Session) -> dict[str, RiskLevel]:
    """Every classification's current risk level."""
    rows = session.exec(select(Classification.name, Classification.risk)).all()
    return {name: RiskLevel(risk) for name, risk in rows}


def classifications(session: Session) -> list[Classification]:
    """The catalogue as stored, by category then name (`risk list`)."""
    query = select(Classification).order_by(col(Classification.category), col(Classification.name))
    return list(session.exec(query).all())


@overload
def stamp(when: datetime) -> str: ...
@overload
def stamp(when: None) -> None: ...
@overload
def stamp(when: datetime | None) -> str | None: ...
def stamp(when: datetime | None) -> str | None:
    """A timestamp as ISO 8601 UTC with a `Z`, the form used in replies, JSON and outbox payloads."""
    return when.strftime("%Y-%m-%dT%H:%M:%SZ") if when else None
