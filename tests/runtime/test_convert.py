"""The model's view of a session: incremental conversion equals converting from scratch."""

from __future__ import annotations

from typing import Any

from pydantic_ai.messages import ModelMessage

from nbsession.runtime.convert import History, to_model_messages
from nbsession.session import ChatMessage, FunctionCall, Item, Message, ToolCall


def item(role: str, content: str = "", **fields: Any) -> Item:
    return Item(message=Message(message=ChatMessage(role=role, content=content, **fields)))


def call(call_id: str, name: str = "shell") -> ToolCall:
    return ToolCall(id=call_id, function=FunctionCall(name=name, arguments='{"cmd": "ls"}'))


def shape(messages: list[ModelMessage]) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """Messages without their timestamps, which differ between two conversions."""
    fields = ("content", "tool_name", "tool_call_id", "args")
    return [
        (
            type(m).__name__,
            [(type(p).__name__, *(getattr(p, f, None) for f in fields)) for p in m.parts],
        )
        for m in messages
    ]


CONVERSATION = [
    item("user", "list the files"),
    item("assistant", "I'll run ls.", tool_calls=[call("c1"), call("c2", "think")]),
    item("tool", "a.txt", tool_call_id="c1"),
    item("tool", "noted", tool_call_id="c2"),
    item("user", "steered in"),
    item("assistant", "Done."),
    Item(error="the model was unreachable"),
    item("user", "again"),
    Item(summary="they listed files", first_kept_entry=7),
    item("assistant", "After the summary."),
    item("user", "last"),
]


def test_appending_one_item_at_a_time_matches_a_fresh_conversion() -> None:
    history = History("be brief")
    for end in range(len(CONVERSATION) + 1):
        items = CONVERSATION[:end]
        assert shape(history.sync(items)) == shape(to_model_messages(items, "be brief")), end


def test_tool_results_and_a_steered_message_share_one_request() -> None:
    messages = to_model_messages(CONVERSATION[:5], "")
    kinds = [type(p).__name__ for p in messages[-1].parts]
    assert kinds == ["ToolReturnPart", "ToolReturnPart", "UserPromptPart"]
    assert messages[-1].parts[1].tool_name == "think"


def test_a_summary_hides_what_it_summarised() -> None:
    text = repr(shape(to_model_messages(CONVERSATION, "")))
    assert "Session Summary: they listed files" in text
    assert "list the files" not in text and "again" in text  # kept from first_kept_entry
    assert "unreachable" not in text  # error records are for people only


def test_forget_rebuilds_after_an_item_was_replaced() -> None:
    history = History("")
    items = list(CONVERSATION[:6])
    history.sync(items)
    items[5] = item("assistant", "Edited answer.")
    assert "Done." in repr(shape(history.sync(items)))  # not seen: nothing was appended
    history.forget()
    assert "Edited answer." in repr(shape(history.sync(items)))
