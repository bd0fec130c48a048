# platform-ro: read-only access to Lumi's platform secrets, for on-call SREs
# during an incident (scope platform-ro, delivered as a wrapped grant token).

# Read secret values (any version).
path "kv/data/platform/*" {
  capabilities = ["read"]
}

# See which secrets and versions exist (vault kv list / vault kv metadata get).
path "kv/metadata/platform/*" {
  capabilities = ["read", "list"]
}
