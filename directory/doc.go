// Package directory holds Lanyard's domain types (organisations, users,
// memberships, credentials, clients, audit events), the persistent store
// contract that every storage engine implements, its sentinel errors, and the
// validation of identifiers that come from outside (ODS codes, emails).
//
// The SQL engines live in directory/sqlstore and are checked by the one suite
// in directory/conformance; ephemeral state lives in directory/ephemeral.
package directory
