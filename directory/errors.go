package directory

import "errors"

// Sentinel errors of the store contract. Engines translate their own errors
// (sql.ErrNoRows, unique violations) to these at their edge; callers test
// them with errors.Is.
var (
	// ErrNotFound: no such record.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a unique value (ODS code, email, ID) is taken.
	ErrConflict = errors.New("already exists")
	// ErrInvalid: a value fails validation; the wrapped message says which.
	ErrInvalid = errors.New("invalid")
)
