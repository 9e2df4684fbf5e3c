"""The product's language, pure: how an algorithm is named, the command grammar and the
schedules it produces, subscriptions, alert threads and the alert state machine."""
