"""Block Kit builders: what people read in Slack, as plain dicts, built before anything is sent.

`base` holds the parts (limits, escaping, blocks); `query` a query's answer and the trace reply;
`alerts` digest alerts and notices; `subscriptions` what subscribing says; `answers` what only
the user who typed a command sees.
"""
