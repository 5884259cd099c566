"""What on-call receives, per SNS protocol: severity, console links, the chat format, the
per-protocol message (`MessageStructure: json`), the digest of a burst, and the owner's copy.

keyfix.notify publishes; these modules only build text and JSON (no AWS call here except
keyfix.messages.owner, which reads principal tags only when owner notification is on).
"""
