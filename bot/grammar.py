"""The command grammar of DESIGN.md §5: text in, a typed `Command` out (or `InvalidInput` with usage).

One parser for every front end (Slack, `mesbot ask`, `mesbot shell`).
"""

from collections.abc import Callable
from functools import lru_cache

from bot import commands as c
from bot.tokens import split
from integration import validation
from integration.catalogue import classification_name
from integration.errors import InvalidInput
from integration.preferences import CATEGORIES
from integration.validation import show

USAGE = {
    "help": "help",
    "status": "status me | status EMAIL | status DEVICE_ID",
    "enrollment": 'enrollment [pending|disconnected] [group "NAME"] · enrollment settings '
    "[disconnected-days N]",
    "risk": "risk list · risk set CLASSIFICATION high|medium|low|none [--yes] · "
    "risk reset CLASSIFICATION|all [--yes]",
    "policy": "policy · policy set high|medium|low [--yes]",
    "connector": "connector · connector set heartbeat MINUTES · connector set error-email ADDRESS · "
    'connector groups add|remove "NAME" · connector sync device|threat on|off',
    "subscription": "subscription · subscription set tenant|full-group|restricted-group GUID|none · "
    "subscription consent",
    "notify": "notify · notify CATEGORY|all on|off [email|slack|both] · "
    "notify quiet HH:MM-HH:MM [ZONE]|off · notify test",
    "audit": "audit [N]",
}
AUDIT_MAX = 200


# A Slack command is parsed three times on its way (is it a change to key once? a read to run on the
# event loop? then to run it); commands are frozen, so the same text can share one.
@lru_cache(maxsize=256)
def parse(text: str) -> c.Command:
    words = split(text)
    if not words:
        return c.Help()
    verb, args = words[0].lower(), words[1:]
    parser = _PARSERS.get(verb)
    if parser is None:
        raise InvalidInput(
            f"Unknown command `{show(words[0], 30)}`. Commands: {', '.join(USAGE)}. Try `help`."
        )
    return parser(args)


def _usage(verb: str, problem: str) -> InvalidInput:
    return InvalidInput(f"{problem} Usage: {USAGE[verb]}")


def _confirmed(verb: str, args: list[str]) -> tuple[list[str], bool]:
    """Strip a trailing `--yes` (or `-y`)."""
    flags = [a for a in args if a.startswith("-")]
    rest = [a for a in args if not a.startswith("-")]
    unknown = [f for f in flags if f.lower() not in ("--yes", "-y")]
    if unknown:
        raise _usage(verb, f"Unknown option `{show(unknown[0], 30)}`; the only option is `--yes`.")
    return rest, bool(flags)


def _help(args: list[str]) -> c.Command:
    return c.Help(topic=args[0].lower() if args and args[0].lower() in USAGE else None)


def _status(args: list[str]) -> c.Command:
    if len(args) != 1:
        raise _usage("status", "Say whose devices: `me`, an e-mail address or a device ID.")
    target = args[0].strip()
    if target.lower() == "me":
        return c.Status("me")
    if "@" in target:
        return c.Status(validation.email("E-mail address", target))
    if not target.replace("-", "").isalnum() or len(target) > 64:
        raise _usage("status", f"`{show(target)}` is neither an e-mail address nor a device ID.")
    return c.Status(target.lower())


def _enrollment(args: list[str]) -> c.Command:
    if args and args[0].lower() == "settings":
        rest = args[1:]
        if not rest:
            return c.EnrollmentSettingsShow()
        if len(rest) == 2 and rest[0].lower() == "disconnected-days":
            return c.EnrollmentSettingsSet(validation.disconnected_days(rest[1]))
        raise _usage("enrollment", "Unknown enrollment setting.")
    state = group = None
    rest = list(args)
    if rest and rest[0].lower() in ("pending", "disconnected"):
        state = rest.pop(0).lower()
    if rest and rest[0].lower() == "group":
        if len(rest) != 2:
            raise _usage("enrollment", "Give one group name after `group`, in quotes if it has spaces.")
        group = validation.group_name(rest[1])
        rest = []
    if rest:
        raise _usage("enrollment", f"Unexpected `{show(rest[0], 30)}`.")
    return c.Enrollment(state=state, group=group)


def _risk(args: list[str]) -> c.Command:
    args, yes = _confirmed("risk", args)
    sub = args[0].lower() if args else "list"
    if sub == "list" and len(args) <= 1 and not yes:
        return c.RiskList()
    if sub == "set" and len(args) == 3:
        return c.RiskSet(classification_name(args[1]), validation.risk_level(args[2]), confirmed=yes)
    if sub == "reset" and len(args) == 2:
        which = None if args[1].lower() == "all" else classification_name(args[1])
        return c.RiskReset(which, confirmed=yes)
    raise _usage("risk", "That is not a risk command.")


def _policy(args: list[str]) -> c.Command:
    args, yes = _confirmed("policy", args)
    if not args and not yes:
        return c.PolicyShow()
    if len(args) == 2 and args[0].lower() == "set":
        return c.PolicySet(validation.policy_level(args[1]), confirmed=yes)
    raise _usage("policy", "That is not a policy command.")


def _connector(args: list[str]) -> c.Command:
    if not args:
        return c.ConnectorShow()
    sub, rest = args[0].lower(), args[1:]
    if sub == "set" and len(rest) == 2:
        field = rest[0].lower()
        if field == "heartbeat":
            return c.ConnectorSet("heartbeat_minutes", validation.heartbeat_minutes(rest[1]))
        if field == "error-email":
            return c.ConnectorSet("error_email", validation.email("Error-report e-mail", rest[1]))
        raise _usage("connector", f"Unknown connector setting `{show(rest[0], 30)}`.")
    if sub == "groups" and len(rest) == 2 and rest[0].lower() in ("add", "remove"):
        return c.ConnectorGroup(add=rest[0].lower() == "add", name=validation.group_name(rest[1]))
    if sub == "sync" and len(rest) == 2 and rest[0].lower() in ("device", "threat"):
        return c.ConnectorSync(rest[0].lower(), _on_off("connector", rest[1]))
    raise _usage("connector", "That is not a connector command.")


def _subscription(args: list[str]) -> c.Command:
    if not args:
        return c.SubscriptionShow()
    sub = args[0].lower()
    if sub == "consent" and len(args) == 1:
        return c.SubscriptionConsent()
    if sub == "set" and len(args) == 3 and args[1].lower() in ("tenant", "full-group", "restricted-group"):
        return c.SubscriptionSet(args[1].lower(), args[2])
    raise _usage("subscription", "That is not a subscription command.")


def _notify(args: list[str]) -> c.Command:
    if not args:
        return c.NotifyShow()
    first = args[0].lower()
    if first == "test" and len(args) == 1:
        return c.NotifyTest()
    if first == "quiet" and len(args) == 2 and args[1].lower() == "off":
        return c.NotifyQuiet(None)
    if first == "quiet" and len(args) in (2, 3):
        start, dash, end = args[1].partition("-")
        if not dash:
            raise _usage("notify", "Quiet hours look like 22:00-07:00, then a time zone if not yours.")
        span = (
            validation.clock_time("Quiet hours start", start),
            validation.clock_time("Quiet hours end", end),
        )
        if span[0] == span[1]:
            raise _usage("notify", "Quiet hours must start and end at different times, e.g. 22:00-07:00.")
        return c.NotifyQuiet(span, validation.time_zone(args[2]) if len(args) == 3 else None)
    if len(args) in (2, 3):
        if first != "all" and first not in CATEGORIES:
            raise _usage(
                "notify", f"Unknown category `{show(args[0], 30)}`; categories: {', '.join(CATEGORIES)}, all."
            )
        categories = CATEGORIES if first == "all" else (first,)
        channel = args[2].lower() if len(args) == 3 else "both"
        channels = {"email": ("email",), "slack": ("slack",), "both": ("email", "slack")}.get(channel)
        if channels is None:
            raise _usage("notify", f"Channel must be email, slack or both; got `{show(args[2], 30)}`.")
        return c.NotifySet(categories, channels, _on_off("notify", args[1]))
    raise _usage("notify", "That is not a notify command.")


def _audit(args: list[str]) -> c.Command:
    if not args:
        return c.Audit()
    # Without leading zeros N has at most 3 digits: check that before int() sees a 2,000-digit word.
    digits = args[0].lstrip("0") if len(args) == 1 else ""
    if digits.isascii() and digits.isdigit() and len(digits) <= 3 and int(digits) <= AUDIT_MAX:
        return c.Audit(int(digits))
    raise _usage("audit", f"N must be a whole number from 1 to {AUDIT_MAX}.")


def _on_off(verb: str, word: str) -> bool:
    value = word.lower()
    if value not in ("on", "off"):
        raise _usage(verb, f"Say `on` or `off`; got `{show(word, 30)}`.")
    return value == "on"


_PARSERS: dict[str, Callable[[list[str]], c.Command]] = {
    "help": _help,
    "status": _status,
    "enrollment": _enrollment,
    "risk": _risk,
    "policy": _policy,
    "connector": _connector,
    "subscription": _subscription,
    "notify": _notify,
    "audit": _audit,
}
