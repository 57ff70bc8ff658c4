// Package refusal is how hero's rules (membership, the board, schedules)
// say no: an error whose message is a sentence for the person who asked
// and whose Kind tells a surface how to answer (an HTTP status, a usage
// error on the command line, a reply in chat).
package refusal

import (
	"errors"
	"fmt"
)

// Kind says why a request was refused.
type Kind int

const (
	// Invalid: the request itself is wrong (a bad email, an empty title,
	// an unknown column, a too frequent schedule).
	Invalid Kind = iota + 1
	// Forbidden: the person's role does not allow it.
	Forbidden
	// NotFound: no such thing, or none the person may see.
	NotFound
	// Conflict: the thing changed since the person read it.
	Conflict
	// Limit: a limit the request must respect is reached (a column's
	// WIP limit).
	Limit
	// LastOwner: the change would leave a project without an owner.
	LastOwner
)

// Error is a refused request.
type Error struct {
	Kind Kind
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// New returns a refusal of kind with a sentence for the person.
func New(k Kind, format string, args ...any) error {
	return &Error{Kind: k, Msg: fmt.Sprintf(format, args...)}
}

// KindOf returns the Kind of a refusal, or 0 for other errors.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}
