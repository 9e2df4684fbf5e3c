"""Bolt listeners: one small module per command or action family, each mapping a payload to a
use case and the result to an answer. Whatever they do not expect goes to the app's one error
handler (`bot.slack.app`)."""
