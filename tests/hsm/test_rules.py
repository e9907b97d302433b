"""hsm.rules and the pure selectors: the content rules (each bad input gets a precise error)
and filling a template (template_render, template_components, template_message)."""

from __future__ import annotations

import pytest

from hsm import rules
from hsm.selectors import template_components, template_message, template_render
from hub.exceptions import ValidationFailed
from tests.hsm.factories import template_fields

TEMPLATE = {
    "name": "claim_follow_up",
    "language": "es",
    "header": "Reclamación {{1}}",
    "body": "Hola {{1}}, su reclamación {{2}} tiene novedades.",
    "footer": "Banco Demo",
}


def refused(**overrides) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as caught:
        rules.content_clean(**template_fields(**overrides))
    return caught.value


@pytest.mark.parametrize(
    ("body", "placeholder", "reason"),
    [
        ("Hola {{1}} y {{3}}", "{{2}}", "missing_placeholder"),
        ("Hola {{2}}", "{{1}}", "missing_placeholder"),
        ("Hola {{ 1}}", "{{ 1}}", "malformed_placeholder"),
        ("Hola {{1 }}", "{{1 }}", "malformed_placeholder"),
        ("Hola {{one}}", "{{one}}", "malformed_placeholder"),
        ("Hola {{0}}", "{{0}}", "malformed_placeholder"),
        ("Hola {{01}}", "{{01}}", "malformed_placeholder"),
        ("Hola {{1}", "{{", "malformed_placeholder"),
        ("Hola 1}}", "}}", "malformed_placeholder"),
        ("Hola {{{1}}}", "{{{1}}", "malformed_placeholder"),
    ],
)
def test_bad_placeholders_are_named(body, placeholder, reason):
    error = refused(body=body, body_examples=["x"])
    assert error.data["field"] == "body"
    assert error.data["reason"] == reason
    assert error.data["placeholder"] == placeholder
    assert placeholder in error.message


def test_a_gap_names_every_missing_placeholder():
    error = refused(body="{{1}} {{4}}", body_examples=["a", "b", "c", "d"])
    assert error.data["missing"] == ["{{2}}", "{{3}}"]
    assert error.message.startswith("The body skips {{2}}, {{3}}")


def test_a_placeholder_may_repeat_and_takes_one_example():
    content = rules.content_clean(
        **template_fields(body="{{1}}: hola {{1}}, ref {{2}}", body_examples=["Ana", "R"])
    )
    assert content.body_examples == ["Ana", "R"]


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"name": "Claim Follow-up"}, "name", "e.g. claim_follow_up"),
        ({"name": ""}, "name", "empty"),
        ({"name": "a" * 513}, "name", "512"),
        ({"language": "spanish"}, "language", "es, en_US"),
        ({"language": "es_ESP"}, "language", "es, en_US"),
        ({"category": "promo"}, "category", "utility, marketing, authentication"),
        ({"body": ""}, "body", "empty"),
        ({"body": "x" * 1025, "body_examples": ["a", "b"]}, "body", "1024"),
        ({"body_examples": ["Ana"]}, "body_examples", "needs 2 examples"),
        ({"body_examples": ["Ana", "R", "x"]}, "body_examples", "3 given"),
        ({"body_examples": "Ana"}, "body_examples", "list"),
        ({"body_examples": ["Ana", " "]}, "body_examples[1]", "{{2}} is empty"),
        ({"body_examples": ["Ana", "a\nb"]}, "body_examples[1]", "new line"),
        ({"body_examples": ["Ana", 7]}, "body_examples[1]", "string"),
        ({"header": "x" * 61}, "header", "60"),
        ({"header": "{{1}} y {{2}}"}, "header", "one placeholder only"),
        ({"header": "{{1}} y {{1}}"}, "header", "one placeholder only"),
        ({"header": "Ref {{2}}"}, "header", "skips {{1}}"),
        ({"header": "Ref {{ 1}}"}, "header", "{{ 1}}"),
        ({"header": "Ref {{1}}", "header_example": ""}, "header_example", "example"),
        ({"header": "Ref", "header_example": "R-42"}, "header_example", "no placeholder"),
        ({"footer": "Ref {{1}}"}, "footer", "placeholders"),
        ({"footer": "x" * 61}, "footer", "60"),
        ({"buttons": {"type": "url"}}, "buttons", "list"),
        ({"buttons": [{"type": "call", "text": "x"}]}, "buttons[0].type", "quick_reply, url"),
        ({"buttons": [{"type": "quick_reply", "text": ""}]}, "buttons[0].text", "empty"),
        ({"buttons": [{"type": "quick_reply", "text": "x" * 26}]}, "buttons[0].text", "25"),
        ({"buttons": [{"type": "quick_reply", "text": "A", "url": "x"}]}, "buttons[0].url", "url"),
        (
            {"buttons": [{"type": "url", "text": "Open", "url": "ftp://x"}]},
            "buttons[0].url",
            "https://",
        ),
        (
            {"buttons": [{"type": "url", "text": "Open", "url": "https://x/{{1}}"}]},
            "buttons[0].url",
            "placeholders",
        ),
        (
            {
                "buttons": [
                    {"type": "quick_reply", "text": "Sí"},
                    {"type": "quick_reply", "text": "sí"},
                ]
            },
            "buttons[1].text",
            "repeats",
        ),
        (
            {"buttons": [{"type": "quick_reply", "text": f"b{i}"} for i in range(11)]},
            "buttons",
            "10",
        ),
        (
            {"buttons": [{"type": "url", "text": f"u{i}", "url": "https://x"} for i in range(3)]},
            "buttons",
            "2 URL",
        ),
        (
            {
                "buttons": [
                    {"type": "quick_reply", "text": "A"},
                    {"type": "url", "text": "U", "url": "https://x"},
                    {"type": "quick_reply", "text": "B"},
                ]
            },
            "buttons",
            "next to each other",
        ),
    ],
)
def test_each_bad_field_gets_a_precise_error(overrides, field, fragment):
    error = refused(**overrides)
    assert error.data["field"] == field
    assert fragment in error.message


def test_clean_normalises_what_whatsapp_would_accept():
    content = rules.content_clean(
        **template_fields(
            name="  claim_follow_up ",
            language="en-us",
            category="Utility",
            body="  Hola {{1}}, ref {{2}}  ",
            header="",
            header_example="",
            footer="",
            buttons=[],
        )
    )
    assert (content.name, content.language, content.category) == (
        "claim_follow_up",
        "en_US",
        "utility",
    )
    assert content.body == "Hola {{1}}, ref {{2}}"


def test_render_fills_header_body_and_footer():
    text = template_render(TEMPLATE, ["R-42", "Ana", "R-42"])
    assert (
        text == "Reclamación R-42\n\nHola Ana, su reclamación R-42 tiene novedades.\n\nBanco Demo"
    )


def test_render_without_header_or_footer_and_with_a_repeated_placeholder():
    template = {"body": "{{1}}, hola {{1}}. Ref {{2}}."}
    assert template_render(template, ["Ana", "R"]) == "Ana, hola Ana. Ref R."
    assert template_render({"body": "Sin datos."}, []) == "Sin datos."


def test_components_and_message_for_the_cloud_api():
    assert template_components(TEMPLATE, ["R-42", "Ana", "R-7"]) == [
        {"type": "header", "parameters": [{"type": "text", "text": "R-42"}]},
        {
            "type": "body",
            "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "R-7"}],
        },
    ]
    plain = {"name": "hello", "language": "en_US", "header": "Hi", "body": "Hello {{1}}"}
    assert template_message(plain, ["Ben"]) == {
        "name": "hello",
        "language": {"code": "en_US"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ben"}]}],
    }
    assert template_components({"body": "Nothing to fill."}, []) == []


@pytest.mark.parametrize(
    ("parameters", "data"),
    [
        (["R-42", "Ana"], {"reason": "parameters_count", "expected": 3, "given": 2}),
        (["R-42", "Ana", "R", "x"], {"reason": "parameters_count", "expected": 3, "given": 4}),
        (["R-42", "", "R"], {"index": 1, "part": "body", "placeholder": "{{1}}"}),
        (["  ", "Ana", "R"], {"index": 0, "part": "header", "placeholder": "{{1}}"}),
        (["R-42", "Ana", "a\tb"], {"index": 2, "part": "body", "placeholder": "{{2}}"}),
        (["R-42", "Ana", "a     b"], {"index": 2, "part": "body", "placeholder": "{{2}}"}),
        (["x" * 60, "Ana", "R"], {"part": "header", "max_chars": 60}),
        (["R", "x" * 1000, "R"], {"part": "body", "max_chars": 1024}),
    ],
)
def test_bad_parameters_are_refused_by_render_and_components(parameters, data):
    for fill in (template_render, template_components):
        with pytest.raises(ValidationFailed) as caught:
            fill(TEMPLATE, parameters)
        assert caught.value.data["field"] == "parameters"
        assert data.items() <= caught.value.data.items()


def test_count_error_explains_the_layout():
    with pytest.raises(ValidationFailed) as caught:
        template_render(TEMPLATE, ["Ana"])
    assert caught.value.message == (
        "This template takes 3 parameters (1 for the header and 2 for the body); 1 given."
    )


def test_parameters_must_be_a_list_of_strings():
    with pytest.raises(ValidationFailed) as caught:
        template_render(TEMPLATE, "Ana")
    assert caught.value.code == "wrong_type"
    with pytest.raises(ValidationFailed) as caught:
        template_render(TEMPLATE, ["R", 5, "x"])
    assert caught.value.code == "wrong_type" and caught.value.data["index"] == 1
