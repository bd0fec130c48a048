# secretbot-reconcile: only for vault.reconcile.full_scan: true. Attach it to
# the bot's AppRole role next to secretbot-bot (deploy/vault/README.md,
# "Optional: the full token scan").
#
# The full scan lists every token accessor, looks each one up (already
# allowed by secretbot-bot: auth/token/lookup-accessor) and revokes, by
# accessor (also in secretbot-bot), the tokens the token role "secretbot"
# created that no live grant holds. Listing accessors is a root-protected
# endpoint: Vault requires sudo on it. The list shows accessors only, never
# tokens; nothing here lets the bot read a token or create one.
path "auth/token/accessors" {
  capabilities = ["list", "sudo"]
}
