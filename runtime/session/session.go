// Package session is a server-side session store on Redis: opaque random
// session IDs, only their SHA-256 in Redis, an idle and an absolute expiry
// on every session, regeneration after a privilege change, logout, "log out
// everywhere" through a bounded per-user index, a cookie helper and a
// net/http middleware.
//
// A Store[T] keeps sessions whose data is a T, encoded with msgpack:
//
//	type Data struct{ CartID string; Admin bool }
//	sessions, err := session.New[Data](client, session.WithPrefix("app:prod:sess"),
//		session.WithIdleTTL(30*time.Minute), session.WithAbsoluteTTL(24*time.Hour))
//	if err != nil { ... }
//	// At login: replace the anonymous session (fixation defence).
//	s.UserID = user.ID
//	s, err = sessions.Regenerate(ctx, s)
//	if err != nil {
//		return err // fail closed: the user is not logged in
//	}
//	sessions.SetCookie(w, s)
//	// Behind sessions.Middleware, handlers read it back:
//	s, ok := sessions.FromContext(r.Context())
//
// # IDs and keys
//
// An ID is 51 base64url characters: an 8-character slot tag (48 random bits)
// and a 43-character secret (256 random bits), all from crypto/rand. Redis
// never sees the ID: the session is the hash
// "<prefix>:{<tag>}:<hex SHA-256 of the ID>", so a leaked RDB file or MONITOR
// output gives no usable cookie. The tag is the key's cluster hash tag.
// Regenerate keeps the tag and replaces the secret, so the old and the new
// session share a slot and one Lua script swaps them atomically: there is no
// moment when both IDs work, nor one when neither does. A tag derived from
// the user would not do: the typical regeneration, at login, changes the
// user from none to someone, and would move the session to another slot.
//
// A session with a user is listed in "<prefix>:user:{<user>}", a sorted set
// of "<tag>:<hash>" members scored by their absolute expiry (microseconds,
// in creation order), which expires with its last session. It is bounded (WithMaxSessionsPerUser): creating one
// more session deletes the user's oldest. DeleteAllForUser deletes every
// session it lists. The index and the sessions live in different slots, so
// creation adds to the index first and checks after writing the session that
// no DeleteAllForUser removed it in between; DeleteAllForUser deletes the
// sessions before and after removing them from the index. Together these
// ensure that a session created concurrently with DeleteAllForUser is either
// deleted or still listed.
//
// # Expiry and failures
//
// A session expires after the idle TTL without Get, Update or Regenerate,
// and in any case at its absolute expiry; both come from the Redis server's
// clock. Every write (Create, Update, Regenerate, Delete, DeleteAllForUser)
// returns its error: the caller must treat it as an authentication failure
// (fail closed). The only writes whose failure is logged rather than
// returned remove a deleted session's entry from its user's index; such an
// entry points to nothing and expires with the index.
package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/repocache/repocache/runtime"
)

// Errors returned by the package. Redis errors are returned wrapped.
var (
	// ErrNotFound reports an ID that is malformed, unknown, expired,
	// deleted or regenerated.
	ErrNotFound = errors.New("session: not found")
	// ErrRevoked reports a Create or Regenerate that raced with
	// DeleteAllForUser for the same user: the new session was deleted.
	ErrRevoked = errors.New("session: revoked while being created")
	// ErrInvalidConfig reports a bad option value.
	ErrInvalidConfig = errors.New("session: invalid configuration")
)

// Defaults of the options.
const (
	DefaultIdleTTL            = 30 * time.Minute
	DefaultAbsoluteTTL        = 24 * time.Hour
	DefaultMaxSessionsPerUser = 50
	DefaultCookieName         = "session"
	tagLen, secretLen         = 8, 43 // base64url characters of 6 and 32 random bytes
	idLen                     = tagLen + secretLen
	indexMargin               = time.Minute // index scores run this much past the session, for clock skew
	userField                 = "u"         // the hash fields: u user, d data, c created, a absolute expiry (Unix ms)
)

// Session is one session. ID is the only copy of the raw ID: it goes to
// the cookie and nowhere else.
type Session[T any] struct {
	// ID is the opaque session ID.
	ID string
	// UserID is the user the session belongs to; empty for an anonymous
	// session. Change it only through Regenerate.
	UserID string
	// Data is the application's session state.
	Data T
	// CreatedAt is when the session (or its last regeneration) was
	// created, by the Redis server's clock.
	CreatedAt time.Time
	// ExpiresAt is the absolute expiry.
	ExpiresAt time.Time
}

// Store keeps sessions with data of type T. Create it with New; it is safe
// for concurrent use.
type Store[T any] struct {
	rc       redis.Cmdable
	prefix   string
	idle     time.Duration
	absolute time.Duration
	maxPer   int
	log      *slog.Logger
	cookie   cookieConfig

	// afterIndex and afterWrite, when set by a test, run between the steps
	// of write, to force its races with DeleteAllForUser.
	afterIndex, afterWrite func()
}

// Option configures a Store.
type Option func(*options)

type options struct {
	prefix   string
	idle     time.Duration
	absolute time.Duration
	maxPer   int
	log      *slog.Logger
	cookie   cookieConfig
}

// WithPrefix sets the prefix of every key, "app:env:sess" style; the
// default is "session". Braces and glob characters in it are escaped.
func WithPrefix(p string) Option { return func(o *options) { o.prefix = p } }

// WithIdleTTL sets how long a session lives without being used; the default
// is DefaultIdleTTL.
func WithIdleTTL(d time.Duration) Option { return func(o *options) { o.idle = d } }

// WithAbsoluteTTL sets how long a session lives at most, used or not; the
// default is DefaultAbsoluteTTL.
func WithAbsoluteTTL(d time.Duration) Option { return func(o *options) { o.absolute = d } }

// WithMaxSessionsPerUser bounds the sessions one user can have; creating
// one more deletes the oldest. The default is DefaultMaxSessionsPerUser.
func WithMaxSessionsPerUser(n int) Option { return func(o *options) { o.maxPer = n } }

// WithLogger sets the logger; the default is slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

// New returns a Store on rc (a *redis.Client, a *redis.ClusterClient or a
// failover client). It returns an error matching ErrInvalidConfig for
// non-positive TTLs or bound, an empty prefix or cookie name.
func New[T any](rc redis.Cmdable, opts ...Option) (*Store[T], error) {
	if rc == nil {
		return nil, fmt.Errorf("%w: nil Redis client", ErrInvalidConfig)
	}
	o := options{
		prefix: "session", idle: DefaultIdleTTL, absolute: DefaultAbsoluteTTL,
		maxPer: DefaultMaxSessionsPerUser, log: slog.Default(),
		cookie: cookieConfig{name: DefaultCookieName, path: "/", secure: true, sameSite: http.SameSiteLaxMode},
	}
	for _, f := range opts {
		f(&o)
	}
	switch {
	case o.prefix == "":
		return nil, fmt.Errorf("%w: empty prefix", ErrInvalidConfig)
	case o.idle < time.Millisecond || o.absolute < time.Millisecond:
		return nil, fmt.Errorf("%w: idle TTL %v, absolute TTL %v", ErrInvalidConfig, o.idle, o.absolute)
	case o.maxPer < 1:
		return nil, fmt.Errorf("%w: %d sessions per user", ErrInvalidConfig, o.maxPer)
	case !validCookieName(o.cookie.name):
		return nil, fmt.Errorf("%w: cookie name %q", ErrInvalidConfig, o.cookie.name)
	}
	parts := strings.Split(o.prefix, ":")
	for i, p := range parts {
		parts[i] = runtime.EscapeKeyPart(p)
	}
	return &Store[T]{rc: rc, prefix: strings.Join(parts, ":"), idle: o.idle, absolute: o.absolute,
		maxPer: o.maxPer, log: o.log, cookie: o.cookie}, nil
}

// ref is where a session ID points in Redis.
type ref struct {
	key    string // the session hash
	member string // its entry in the user index
}

func (s *Store[T]) ref(id string) ref {
	sum := sha256.Sum256([]byte(id))
	tag, h := id[:tagLen], hex.EncodeToString(sum[:])
	return ref{key: s.prefix + ":{" + tag + "}:" + h, member: tag + ":" + h}
}

func (s *Store[T]) refOfMember(m string) (string, bool) {
	tag, h, ok := strings.Cut(m, ":")
	if !ok || len(tag) != tagLen {
		return "", false
	}
	return s.prefix + ":{" + tag + "}:" + h, true
}

func (s *Store[T]) indexKey(user string) string {
	return s.prefix + ":user:{" + runtime.EscapeKeyPart(user) + "}"
}

func validID(id string) bool {
	if len(id) != idLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func randomPart(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("session: random ID: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// newID returns a fresh ID; with a tag, one in the same slot.
func newID(tag string) (string, error) {
	if tag == "" {
		t, err := randomPart(6)
		if err != nil {
			return "", err
		}
		tag = t
	}
	secret, err := randomPart(32)
	if err != nil {
		return "", err
	}
	return tag + secret, nil
}

const serverNow = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

// writeSession (Lua, shared by create and regenerate) writes KEYS[i] from
// ARGV user, data, idle ms, absolute ms and returns {now, absolute expiry}.
const writeSession = `
local function write(key, user, data, idle, abs)
	local a = now + abs
	redis.call('HSET', key, 'u', user, 'd', data, 'c', string.format('%.0f', now), 'a', string.format('%.0f', a))
	redis.call('PEXPIRE', key, math.min(idle, abs))
	return {now, a}
end
`

// createScript: KEYS session; ARGV user, data, idle ms, absolute ms. Run
// twice, it writes the same fields again (the absolute expiry counted from
// the second run, a few hundred milliseconds later).
var createScript = redis.NewScript(serverNow + writeSession + `
return write(KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]))
`)

// regenerateScript: KEYS old, new; ARGV as createScript. Nothing when the
// old session is gone.
//
// Run twice (go-redis retries a command whose reply timed out after the
// server ran it): the first run deleted the old session, so the second
// finds it gone; but the new ID is fresh and random, drawn once per
// Regenerate, so a session under it can only be this call's own first run:
// the retry returns its times. Before, the retry answered "not found", the
// caller lost the old session and never got the new one, which stayed
// alive and unlisted (TestRetriedRegenerateKeepsTheSession).
var regenerateScript = redis.NewScript(serverNow + writeSession + `
if redis.call('EXISTS', KEYS[1]) == 0 then
	local v = redis.call('HMGET', KEYS[2], 'c', 'a')
	if v[1] and v[2] then
		-- this Regenerate's own earlier run, whose reply was lost
		return {tonumber(v[1]), tonumber(v[2])}
	end
	return false
end
redis.call('DEL', KEYS[1])
return write(KEYS[2], ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]))
`)

// touchScript: KEYS session; ARGV idle ms. It returns {user, data, created,
// absolute} and renews the idle TTL, or nothing. Run twice, it renews the
// TTL twice and returns the same fields. One step.
var touchScript = redis.NewScript(serverNow + `
local v = redis.call('HMGET', KEYS[1], 'u', 'd', 'c', 'a')
if not v[4] then return false end
local left = tonumber(v[4]) - now
if left <= 0 then
	redis.call('DEL', KEYS[1])
	return false
end
redis.call('PEXPIRE', KEYS[1], math.min(tonumber(ARGV[1]), left))
return v
`)

// updateScript: KEYS session; ARGV data, idle ms. 1 if written. Run twice,
// it writes the same data again and returns 1; if another Update of the
// session landed between the two runs, the retry overwrites it (last
// writer wins, as with a late request). One step.
var updateScript = redis.NewScript(serverNow + `
local a = tonumber(redis.call('HGET', KEYS[1], 'a'))
if not a or a <= now then return 0 end
redis.call('HSET', KEYS[1], 'd', ARGV[1])
redis.call('PEXPIRE', KEYS[1], math.min(tonumber(ARGV[2]), a - now))
return 1
`)

// deleteScript: KEYS session. It returns the user, or nothing. Run twice,
// the second run finds nothing and returns nothing: Delete still returns
// nil, but skips removing the index entry, which then points to nothing
// and expires with the index (or goes first when the bound is reached).
// Delete stopped after the script: the same dangling entry.
var deleteScript = redis.NewScript(`
local u = redis.call('HGET', KEYS[1], 'u')
redis.call('DEL', KEYS[1])
return u
`)

// indexAddScript: KEYS index; ARGV member, absolute ms, max. It drops
// expired entries, adds the member scored by its expiry in microseconds
// (plus a margin; strictly above every other entry, so that the order of
// scores is the order of creation),
// makes the index expire with its last entry and returns the members beyond
// the bound, oldest first, for the caller to delete.
//
// Run twice, the member is re-scored (still the newest) and the same
// members beyond the bound are returned, as they are deleted only after the
// reply. The write after it (indexAdd, then the session script, then the
// ZSCORE check) is safe to stop at each step: a listed entry without a
// session points to nothing; the sessions beyond the bound are deleted
// before they are unlisted, so a stop leaves them listed and revocable.
var indexAddScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now))
local score = now + tonumber(ARGV[2]) * 1000
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if top[2] and tonumber(top[2]) >= score then score = tonumber(top[2]) + 1 end
redis.call('ZADD', KEYS[1], string.format('%.0f', score), ARGV[1])
redis.call('PEXPIREAT', KEYS[1], string.format('%.0f', math.ceil(score / 1000)))
local n = redis.call('ZCARD', KEYS[1])
local max = tonumber(ARGV[3])
if n <= max then return {} end
return redis.call('ZRANGE', KEYS[1], 0, n - max - 1)
`)

// Create starts a session for userID (empty for an anonymous session) with
// data. Any error means no session was created: if the write ran but its
// reply was lost, Create deletes the session before it returns (unless
// Redis is down; the session then stays listed in the user's index, for
// DeleteAllForUser, and expires after the idle TTL, its ID known to
// nobody).
func (s *Store[T]) Create(ctx context.Context, userID string, data T) (*Session[T], error) {
	id, err := newID("")
	if err != nil {
		return nil, err
	}
	return s.write(ctx, "", id, userID, data)
}

// write stores a session under id, replacing old (an ID) atomically when it
// is set, and keeps the user index right.
func (s *Store[T]) write(ctx context.Context, old, id, userID string, data T) (*Session[T], error) {
	enc, err := msgpack.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("session: encode: %w", err)
	}
	r := s.ref(id)
	if userID != "" {
		if err := s.indexAdd(ctx, userID, r.member); err != nil {
			s.abandon(ctx, userID, r)
			return nil, err
		}
		if s.afterIndex != nil {
			s.afterIndex()
		}
	}
	args := []any{userID, enc, s.idle.Milliseconds(), s.absolute.Milliseconds()}
	var times []int64
	if old == "" {
		times, err = createScript.Run(ctx, s.rc, []string{r.key}, args...).Int64Slice()
	} else {
		times, err = regenerateScript.Run(ctx, s.rc, []string{s.ref(old).key, r.key}, args...).Int64Slice()
		if errors.Is(err, redis.Nil) {
			s.abandon(ctx, userID, r)
			return nil, ErrNotFound
		}
	}
	if err != nil {
		// The script may have run before the error (its reply lost to a
		// timeout, go-redis's retries used up or off): a session whose ID
		// the caller never gets must not stay, least of all unlisted.
		s.abandon(ctx, userID, r)
		return nil, fmt.Errorf("session: write: %w", err)
	}
	if userID != "" && s.afterWrite != nil {
		s.afterWrite()
	}
	if userID != "" {
		// A DeleteAllForUser may have removed the entry between the index
		// write and the session write: then the session must go too.
		if err := s.rc.ZScore(ctx, s.indexKey(userID), r.member).Err(); err != nil {
			if delErr := s.rc.Del(ctx, r.key).Err(); delErr != nil {
				return nil, fmt.Errorf("session: delete after a failed check: %w", errors.Join(err, delErr))
			}
			if errors.Is(err, redis.Nil) {
				return nil, ErrRevoked
			}
			return nil, fmt.Errorf("session: index check: %w", err)
		}
	}
	return &Session[T]{ID: id, UserID: userID, Data: data,
		CreatedAt: time.UnixMilli(times[0]), ExpiresAt: time.UnixMilli(times[1])}, nil
}

func (s *Store[T]) indexAdd(ctx context.Context, userID, member string) error {
	idx := s.indexKey(userID)
	over, err := indexAddScript.Run(ctx, s.rc, []string{idx}, member,
		(s.absolute + indexMargin).Milliseconds(), s.maxPer).StringSlice()
	if err != nil {
		return fmt.Errorf("session: user index: %w", err)
	}
	if len(over) == 0 {
		return nil
	}
	// Delete the sessions beyond the bound before unlisting them, so that
	// a failure leaves them listed, hence revocable.
	if _, err := s.unlink(ctx, over); err != nil {
		return err
	}
	members := make([]any, len(over))
	for i, m := range over {
		members[i] = m
	}
	if err := s.rc.ZRem(ctx, idx, members...).Err(); err != nil {
		return fmt.Errorf("session: user index: %w", err)
	}
	return nil
}

// unlink deletes the sessions of index members, one command each: they are
// in different slots. It returns how many existed.
func (s *Store[T]) unlink(ctx context.Context, members []string) (int, error) {
	cmds := make([]*redis.IntCmd, 0, len(members))
	_, err := s.rc.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, m := range members {
			if k, ok := s.refOfMember(m); ok {
				cmds = append(cmds, p.Unlink(ctx, k))
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("session: delete: %w", err)
	}
	n := 0
	for _, c := range cmds {
		n += int(c.Val())
	}
	return n, nil
}

// Get returns the session with the given ID and renews its idle TTL. It
// returns ErrNotFound for a malformed, unknown or expired ID, and a wrapped
// Redis error when it cannot tell (fail closed: treat it as no access). A
// session whose data no longer decodes into T (the type changed) is
// deleted and reported as ErrNotFound.
func (s *Store[T]) Get(ctx context.Context, id string) (*Session[T], error) {
	if !validID(id) {
		return nil, ErrNotFound
	}
	r := s.ref(id)
	v, err := touchScript.Run(ctx, s.rc, []string{r.key}, s.idle.Milliseconds()).Slice()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("session: get: %w", err)
	}
	sess := &Session[T]{ID: id}
	fields := make([]string, len(v))
	for i, x := range v {
		fields[i], _ = x.(string)
	}
	if len(fields) != 4 {
		return nil, fmt.Errorf("session: get: unexpected reply %v", v)
	}
	sess.UserID = fields[0]
	c, err1 := strconv.ParseInt(fields[2], 10, 64)
	a, err2 := strconv.ParseInt(fields[3], 10, 64)
	if err := errors.Join(err1, err2, msgpack.Unmarshal([]byte(fields[1]), &sess.Data)); err != nil {
		s.log.Warn("session: undecodable session deleted", "err", err)
		if err := s.Delete(ctx, id); err != nil {
			return nil, err
		}
		return nil, ErrNotFound
	}
	sess.CreatedAt, sess.ExpiresAt = time.UnixMilli(c), time.UnixMilli(a)
	return sess, nil
}

// Update stores sess.Data and renews the idle TTL. It returns ErrNotFound
// when the session has expired or been deleted: it never brings one back.
// UserID is not written: change it with Regenerate.
func (s *Store[T]) Update(ctx context.Context, sess *Session[T]) error {
	if sess == nil || !validID(sess.ID) {
		return ErrNotFound
	}
	enc, err := msgpack.Marshal(sess.Data)
	if err != nil {
		return fmt.Errorf("session: encode: %w", err)
	}
	ok, err := updateScript.Run(ctx, s.rc, []string{s.ref(sess.ID).key}, enc, s.idle.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("session: update: %w", err)
	}
	if ok == 0 {
		return ErrNotFound
	}
	return nil
}

// Regenerate replaces sess with a new session under a new ID that holds
// sess.UserID and sess.Data, in one atomic step: afterwards the old ID is
// unknown. Call it whenever privileges change (login, logout to anonymous,
// sudo mode, role change), after setting UserID and Data. The new session
// gets fresh idle and absolute lifetimes. It returns ErrNotFound when the
// old session is gone.
func (s *Store[T]) Regenerate(ctx context.Context, sess *Session[T]) (*Session[T], error) {
	if sess == nil || !validID(sess.ID) {
		return nil, ErrNotFound
	}
	id, err := newID(sess.ID[:tagLen])
	if err != nil {
		return nil, err
	}
	oldUser, err := s.userOf(ctx, sess.ID)
	if err != nil {
		return nil, err
	}
	next, err := s.write(ctx, sess.ID, id, sess.UserID, sess.Data)
	if err != nil {
		return nil, err // write cleaned up after itself
	}
	if oldUser != "" {
		s.unindex(ctx, oldUser, s.ref(sess.ID).member)
	}
	return next, nil
}

func (s *Store[T]) userOf(ctx context.Context, id string) (string, error) {
	u, err := s.rc.HGet(ctx, s.ref(id).key, userField).Result()
	if errors.Is(err, redis.Nil) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("session: get: %w", err)
	}
	return u, nil
}

// abandon undoes what a failed write may have done: it deletes the new
// session (which may exist if the write's reply was lost) and then its
// index entry. If the delete fails, the entry stays, so that
// DeleteAllForUser can still revoke the session. It runs even when ctx has
// ended, for a second at most.
func (s *Store[T]) abandon(ctx context.Context, userID string, r ref) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if err := s.rc.Del(ctx, r.key).Err(); err != nil {
		s.log.Warn("session: delete after a failed write failed; the session stays listed", "err", err)
		return
	}
	if userID != "" {
		s.unindex(ctx, userID, r.member)
	}
}

// unindex removes a member from a user's index; a failure leaves an entry
// that points to nothing, so it is logged, not returned.
func (s *Store[T]) unindex(ctx context.Context, user, member string) {
	if err := s.rc.ZRem(ctx, s.indexKey(user), member).Err(); err != nil {
		s.log.Warn("session: user index cleanup failed", "err", err)
	}
}

// Delete ends the session with the given ID (logout). Deleting an unknown
// ID is not an error.
func (s *Store[T]) Delete(ctx context.Context, id string) error {
	if !validID(id) {
		return nil
	}
	r := s.ref(id)
	u, err := deleteScript.Run(ctx, s.rc, []string{r.key}).Text()
	if errors.Is(err, redis.Nil) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("session: delete: %w", err)
	}
	if u != "" {
		s.unindex(ctx, u, r.member)
	}
	return nil
}

// DeleteAllForUser ends every session of userID (password reset, account
// deletion, "log out everywhere") and returns how many there were.
//
// Each step (ZRANGE, the UNLINKs, ZREM, the UNLINKs again) is idempotent;
// a retried UNLINK pipeline counts the sessions it deleted the first time
// as none, so the count can be low after a lost reply. Stopped between
// steps, it leaves the remaining sessions listed: the next call ends them.
func (s *Store[T]) DeleteAllForUser(ctx context.Context, userID string) (int, error) {
	if userID == "" {
		return 0, fmt.Errorf("%w: empty user ID", ErrInvalidConfig)
	}
	idx := s.indexKey(userID)
	members, err := s.rc.ZRange(ctx, idx, 0, -1).Result()
	if err != nil {
		return 0, fmt.Errorf("session: user index: %w", err)
	}
	if len(members) == 0 {
		return 0, nil
	}
	n, err := s.unlink(ctx, members)
	if err != nil {
		return 0, err
	}
	rm := make([]any, len(members))
	for i, m := range members {
		rm[i] = m
	}
	if err := s.rc.ZRem(ctx, idx, rm...).Err(); err != nil {
		return n, fmt.Errorf("session: user index: %w", err)
	}
	// A session written after the first pass but checked before the ZREM
	// (see write) survived it: delete again.
	m, err := s.unlink(ctx, members)
	return n + m, err
}
