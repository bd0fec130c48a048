# platform-rw: read/write access to Lumi's platform secrets, for Platform
# Security engineers (scope platform-rw, delivered through entity-group
# membership: they log in with their own MFA).

# Read, write, patch and soft-delete the latest version.
path "kv/data/platform/*" {
  capabilities = ["create", "read", "update", "patch", "delete"]
}

# See which secrets and versions exist. Metadata (the inventory mirror) is
# left to secretbot, so no update or patch here.
path "kv/metadata/platform/*" {
  capabilities = ["read", "list"]
}

# Soft-delete and restore specific versions. Destroying versions is left to
# secretbot's rotation, which records it.
path "kv/delete/platform/*" {
  capabilities = ["update"]
}

path "kv/undelete/platform/*" {
  capabilities = ["update"]
}
