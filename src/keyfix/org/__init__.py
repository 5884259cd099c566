"""keyfix across an AWS Organization (issue #15).

- `settings`: the organisation settings (environment variables the StackSet template sets).
- `messages`: the two events keyfix puts on another account's bus - a key-policy proposal
  for the key's owner, and the owner's outcome back to the sender - built and parsed strictly.
- `member_side`: after a report, send it to the central bus and a proposal to the key owner's
  bus (best effort: a member keeps working alone when neither exists).
- `owner_side`: the key owner's keyfix deciding a proposal: verify the sender, check, write.
- `routing`: which incoming events are keyfix's organisation events (the handler asks first).
- `scan`: `keyfix scan --organization`, every member account through the StackSet's read-only role.
"""
