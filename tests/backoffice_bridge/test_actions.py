"""The action framework: each type's declared parameters are validated with a precise
error (field and reason), before anything is saved or sent."""

from __future__ import annotations

import pytest

from backoffice_bridge.actions import ActionType, action_register, action_type_get, action_types
from hub.exceptions import ErrorCode, ValidationFailed

LIMITS = action_type_get("temporary_limits")


@pytest.mark.parametrize(
    ("params", "code", "field", "reason"),
    [
        ({"single_transfer": 10}, ErrorCode.MISSING_FIELD, "params.daily_transfer", "missing"),
        (
            {"daily_transfer": -5, "single_transfer": 0},
            ErrorCode.INVALID_VALUE,
            "params.daily_transfer",
            "negative",
        ),
        (
            {"daily_transfer": 50_001, "single_transfer": 0},
            ErrorCode.INVALID_VALUE,
            "params.daily_transfer",
            "above_maximum",
        ),
        (
            {"daily_transfer": 1000, "single_transfer": 20_001},
            ErrorCode.INVALID_VALUE,
            "params.single_transfer",
            "above_maximum",
        ),
        (
            {"daily_transfer": "1000", "single_transfer": 1},
            ErrorCode.WRONG_TYPE,
            "params.daily_transfer",
            "wrong_type",
        ),
        (
            {"daily_transfer": True, "single_transfer": 1},
            ErrorCode.WRONG_TYPE,
            "params.daily_transfer",
            "wrong_type",
        ),
        (
            {"daily_transfer": 100, "single_transfer": 200},
            ErrorCode.INVALID_VALUE,
            "params.single_transfer",
            "above_daily",
        ),
        (
            {"daily_transfer": 100, "single_transfer": 10, "weekly": 5},
            ErrorCode.INVALID_VALUE,
            "params.weekly",
            "unknown_parameter",
        ),
    ],
)
def test_limit_parameters(params, code, field, reason):
    with pytest.raises(ValidationFailed) as refused:
        LIMITS.clean(params)
    assert refused.value.code == code
    assert refused.value.data["field"] == field
    assert refused.value.data["reason"] == reason


def test_the_maximum_is_the_banks_setting(settings):
    settings.BACKOFFICE_MAX_DAILY_TRANSFER = 1000
    with pytest.raises(ValidationFailed) as refused:
        LIMITS.clean({"daily_transfer": 1001, "single_transfer": 1})
    assert refused.value.data["maximum"] == 1000
    assert "above the bank's maximum of 1000" in refused.value.message
    assert LIMITS.clean({"daily_transfer": 1000, "single_transfer": 0}) == {
        "daily_transfer": 1000,
        "single_transfer": 0,
    }


def test_block_needs_a_reason_from_the_list():
    block = action_type_get("block_user")
    with pytest.raises(ValidationFailed) as missing:
        block.clean({})
    assert missing.value.data == {"field": "params.reason", "reason": "missing"}
    with pytest.raises(ValidationFailed) as wrong:
        block.clean({"reason": "bored"})
    assert wrong.value.data["reason"] == "not_a_choice"
    assert block.clean({"reason": "lost_device", "note": "  called from abroad "}) == {
        "reason": "lost_device",
        "note": "called from abroad",
    }


def test_params_must_be_an_object_and_notes_bounded():
    with pytest.raises(ValidationFailed) as wrong:
        action_type_get("unblock_user").clean(["x"])
    assert wrong.value.code == ErrorCode.WRONG_TYPE
    with pytest.raises(ValidationFailed) as long:
        action_type_get("reset_password").clean({"note": "x" * 501})
    assert long.value.data["reason"] == "too_long"


def test_unknown_type():
    with pytest.raises(ValidationFailed) as unknown:
        action_type_get("wire_transfer")
    assert unknown.value.data["field"] == "action_type"
    assert unknown.value.data["reason"] == "unknown_action_type"


def test_declarations():
    described = {t.name: t.describe() for t in action_types()}
    # The case types (seed 002) register next to these.
    assert set(described) >= {
        "block_user",
        "unblock_user",
        "temporary_limits",
        "reset_password",
        "dispute_transaction",
        "stop_cheque",
    }
    assert described["block_user"]["pending_status"] == "To Be Inactivated"
    assert described["block_user"]["done_status"] == "Inactive"
    assert described["temporary_limits"]["temporary_hours"] == 24
    assert described["reset_password"]["needs_checker"] is False
    on_behalf = {"dispute_transaction", "stop_cheque"}
    assert {
        n
        for n in ("block_user", "unblock_user", "temporary_limits", "reset_password")
        if described[n]["on_behalf"]
    } == set()
    assert all(
        described[name]["permission"] == "backoffice_bridge.act_on_behalf"
        and described[name]["needs_checker"] is False  # seed 001: consent, permission, audit
        for name in on_behalf
    )
    assert action_type_get("block_user").group() == action_type_get("unblock_user").group()


def test_a_type_is_registered_once():
    class Again(ActionType):
        name = "block_user"

    with pytest.raises(ValueError, match="registered twice"):
        action_register(Again)
