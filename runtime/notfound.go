package runtime

import (
	"errors"
	"fmt"

	"github.com/repocache/repocache/codec"
)

// notFound recognises a loader's not-found answer and rebuilds it on a
// cached hit; see NotFoundIs and NotFoundAs.
type notFound interface {
	// match reports whether err is the not-found answer and, for an error
	// type, returns its value encoded to store with the entry.
	match(cd codec.Codec, err error) (payload []byte, ok bool)
	// rebuild returns the error a cached not-found answers with.
	rebuild(cd codec.Codec, payload []byte) error
}

// NotFoundIs makes target the not-found answer of a get: with Negative, a
// loader error for which errors.Is(err, target) holds is cached, and a hit
// on it returns target itself, the same value (gorm.ErrRecordNotFound, say).
// Without it, ErrNotFound is the not-found answer.
func NotFoundIs(target error) CallOption {
	return CallOption{kind: optNotFound, fn: notFoundIs{target}}
}

// NotFoundAs makes every error of type E the not-found answer of a get:
// with Negative, a loader error for which errors.As finds an E is cached
// with that E's value (encoded with the cache's codec, so its exported
// fields survive), and a hit returns an equal E, so that callers that check
// with a type assertion or errors.As keep working.
func NotFoundAs[E error]() CallOption {
	return CallOption{kind: optNotFound, fn: notFoundAs[E]{}}
}

type notFoundIs struct{ target error }

func (n notFoundIs) match(_ codec.Codec, err error) ([]byte, bool) {
	return nil, errors.Is(err, n.target)
}
func (n notFoundIs) rebuild(codec.Codec, []byte) error { return n.target }

type notFoundAs[E error] struct{}

func (notFoundAs[E]) match(cd codec.Codec, err error) ([]byte, bool) {
	var e E
	if !errors.As(err, &e) {
		return nil, false
	}
	payload, merr := codec.Marshal(cd, e)
	if merr != nil {
		return nil, false // not cacheable: the loader runs again next time
	}
	return payload, true
}

func (notFoundAs[E]) rebuild(cd codec.Codec, payload []byte) error {
	e, err := codec.Unmarshal[E](cd, payload)
	if err != nil {
		return fmt.Errorf("%w (cached not-found of another layout)", ErrNotFound)
	}
	return e
}

// notFoundOf returns the call's not-found matcher: the last NotFoundIs or
// NotFoundAs option, else ErrNotFound.
func notFoundOf(opts []CallOption) notFound {
	for i := len(opts) - 1; i >= 0; i-- {
		if opts[i].kind == optNotFound {
			if nf, ok := opts[i].fn.(notFound); ok {
				return nf
			}
		}
	}
	return notFoundIs{ErrNotFound}
}
