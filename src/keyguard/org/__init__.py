"""Organization mode (issue 11): one deployment in the security account acts in every member account.

Organization mode is a different way of making `keyguard.aws.Clients`, not a parameter threaded through
the engine: `accounts.for_runtime()` gives the runtime either the account it runs in, or an
`Organization` that proves each incident's account from its event (`target`), checks it against AWS
Organizations and the allow-list (`directory`), and assumes the member role there (`credentials`).
"""
