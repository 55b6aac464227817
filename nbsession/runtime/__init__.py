"""The runtime: runs a session's turns (model calls, tool approval and tool calls)."""
