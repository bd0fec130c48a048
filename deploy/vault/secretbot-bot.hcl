# secretbot-bot: the policy of the bot's own Vault token (AppRole role
# "secretbot"). It holds exactly what the bot calls. `secretbot check` asks
# Vault (sys/capabilities-self) for each capability below and names any that
# is missing.
#
# The paths assume the KV v2 mount "kv" (vault.kv_mount), the token role
# "secretbot" (vault.token_role) and the grant policies platform-ro and
# platform-rw (the scopes' vault_policies). Change them together with the
# configuration.

# --- The bot's own token -----------------------------------------------------

# Look itself up: `secretbot check` and the renewal loop read policies and TTL.
path "auth/token/lookup-self" {
  capabilities = ["read"]
}

# Renew itself between AppRole logins.
path "auth/token/renew-self" {
  capabilities = ["update"]
}

# `secretbot check` asks which of the capabilities in this file it holds.
path "sys/capabilities-self" {
  capabilities = ["update"]
}

# --- Grant tokens (delivery: wrapped-token) ------------------------------------

# Issue grant tokens only through the token role. The role, not this policy,
# bounds them: allowed_policies, orphan, not renewable, explicit max TTL.
# No create on auth/token/create itself: the bot cannot mint child tokens
# with its own policies.
path "auth/token/create/secretbot" {
  capabilities = ["update"]
}

# Read the role so `secretbot check` can verify its settings.
path "auth/token/roles/secretbot" {
  capabilities = ["read"]
}

# Revoke a grant, or an unused wrapping token, by accessor: the bot stores
# accessors, never tokens.
path "auth/token/revoke-accessor" {
  capabilities = ["update"]
}

# Tell whether a wrapping token was unwrapped yet, and inspect grants.
path "auth/token/lookup-accessor" {
  capabilities = ["update"]
}

# --- Group membership (delivery: entity-group) ---------------------------------

# Find the accessor of vault.entity_auth_mount (e.g. oidc/), needed to look
# entities up by alias.
path "sys/auth" {
  capabilities = ["read"]
}

# Find the requester's entity by alias name (their e-mail on that mount).
path "identity/lookup/entity" {
  capabilities = ["update"]
}

# Create the per-grant group. Only groups named secretbot-*, internal, whose
# policies are grant policies and whose members are entities: the bot cannot
# hand anyone (itself included) another policy, nor change other groups
# (no "id" parameter, so no update of an existing group by id).
path "identity/group" {
  capabilities = ["create", "update"]
  allowed_parameters = {
    "name"              = ["secretbot-*"]
    "type"              = ["internal"]
    "policies"          = ["platform-ro", "platform-rw"]
    "member_entity_ids" = []
    "metadata"          = []
  }
}

# Read and delete its own groups, by name (never groups by id).
path "identity/group/name/secretbot-*" {
  capabilities = ["read", "delete"]
}

# --- Inventory and rotation (KV v2 mounted at kv/) ----------------------------

# Write new versions (check-and-set) and read them back.
path "kv/data/*" {
  capabilities = ["create", "read", "update"]
}

# Read versions and custom_metadata (the inventory mirror); set and patch it.
# No delete: the bot never removes a secret with all its history.
path "kv/metadata/*" {
  capabilities = ["create", "read", "update", "patch"]
}

# Soft-delete and restore specific versions.
path "kv/delete/*" {
  capabilities = ["update"]
}

path "kv/undelete/*" {
  capabilities = ["update"]
}

# Destroy the previous version once a rotation is confirmed.
path "kv/destroy/*" {
  capabilities = ["update"]
}
