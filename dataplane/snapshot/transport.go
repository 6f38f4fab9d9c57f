package snapshot

// TLSServerName is the name the operator's snapshot-server certificate always carries (next to
// the DNS names of the operator's Service) and the name gateway pods verify it against, whatever
// host their --config-source URL names. The certificate is issued by the operator's own CA, so
// no other certificate can carry this name for a pod that trusts only that CA.
const TLSServerName = "snapshot.llm-gateway.internal"
