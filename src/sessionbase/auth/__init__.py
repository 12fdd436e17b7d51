"""Who may do what: scopes and identities, the signing key, tokens, pairing codes, device
secrets, and the limits on guessing them.

Nothing here knows HTTP or WebSockets: the server asks ``Authority`` (``auth.authority``) who a
credential is, and the live engine asks an ``Identity`` whether it holds a function's scope.
"""
