package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Client is a redis.UniversalClient built by NewClient. It logs connection
// events (connect, dial errors, connection errors, reconnects) with the
// password redacted, and counts reconnects for Cache.Stats.
type Client struct {
	redis.UniversalClient
	url        string // redacted
	log        *slog.Logger
	broken     atomic.Bool
	reconnects atomic.Int64
	errLog     rateLimitedLog
}

// ClientOption configures NewClient.
type ClientOption func(*clientConfig)

type clientConfig struct {
	log   *slog.Logger
	tweak func(*redis.UniversalOptions)
}

// WithClientLogger sets the logger for connection events; the default is
// slog.Default().
func WithClientLogger(l *slog.Logger) ClientOption {
	return func(c *clientConfig) {
		if l != nil {
			c.log = l
		}
	}
}

// WithClientOptions lets the caller adjust the go-redis options after the
// URL and the defaults are applied.
func WithClientOptions(f func(*redis.UniversalOptions)) ClientOption {
	return func(c *clientConfig) { c.tweak = f }
}

// Production defaults that NewClient applies where the URL does not say
// otherwise (go-redis URL query options such as ?read_timeout=2s do). A
// cache must fail fast: a read that times out is served from the source.
const (
	DefaultDialTimeout     = 2 * time.Second
	DefaultReadTimeout     = 500 * time.Millisecond
	DefaultWriteTimeout    = 500 * time.Millisecond
	DefaultMaxRetries      = 2
	DefaultMinRetryBackoff = 8 * time.Millisecond
	DefaultMaxRetryBackoff = 256 * time.Millisecond
	// DefaultDialerRetries is the number of dial attempts per connection.
	// go-redis's own default, 5 attempts 100 ms apart for each of a
	// command's attempts, made each cached read take 1.25 s with Redis
	// down; one attempt fails at once, and the Cache's circuit breaker
	// takes over.
	DefaultDialerRetries = 1
	// DefaultClusterStateReload is how old a cluster client's slot map may
	// get before it is read again (go-redis's default is a minute).
	DefaultClusterStateReload = time.Second
)

// NewClient builds the process's one Redis client from a URL such as
// REDIS_URL. It also routes go-redis's own log lines (which go-redis keeps
// in one process-wide logger) through the client's slog logger at WARN,
// at most one a second:
//
//	redis://[user:password@]host:port[/db][?option=value...]
//	rediss://…                  the same over TLS (serverless providers require it)
//	redis+cluster://[user:password@]host1:port1,host2:port2[?…]   Redis Cluster seeds
//	rediss+cluster://…          a cluster over TLS
//	redis+sentinel://[user:password@]s1:port1,s2:port2/mastername[/db][?…]
//
// Query options are go-redis's (dial_timeout, read_timeout, pool_size,
// max_retries, …). Unset ones get the Default* values above, a pool of 10
// connections per CPU, and context deadlines honoured. Errors never contain
// the password.
func NewClient(rawURL string, opts ...ClientOption) (*Client, error) {
	cfg := clientConfig{log: slog.Default()}
	for _, o := range opts {
		o(&cfg)
	}
	uo, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	applyDefaults(uo)
	if cfg.tweak != nil {
		cfg.tweak(uo)
	}
	c := &Client{url: RedactURL(rawURL), log: cfg.log}
	c.errLog.every = time.Second
	switch {
	case uo.MasterName != "":
		c.UniversalClient = redis.NewFailoverClient(uo.Failover())
	case len(uo.Addrs) > 1 || strings.Contains(strings.SplitN(rawURL, "://", 2)[0], "cluster"):
		co := uo.Cluster()
		// go-redis reloads the slot map only after a redirect or once a
		// minute: a master that died without a word kept failing its slots
		// for up to a minute after its replica took over.
		co.ClusterStateReloadInterval = DefaultClusterStateReload
		c.UniversalClient = redis.NewClusterClient(co)
	default:
		c.UniversalClient = redis.NewClient(uo.Simple())
	}
	c.AddHook(connHook{c})
	goRedisLog.target.Store(c.log)
	c.log.Info("repocache: redis client configured", "url", c.url, "pool_size", uo.PoolSize,
		"read_timeout", uo.ReadTimeout, "max_retries", uo.MaxRetries)
	return c, nil
}

// Unwrap returns the go-redis client inside.
func (c *Client) Unwrap() redis.UniversalClient { return c.UniversalClient }

// Reconnects counts the connections dialled after a connection error.
func (c *Client) Reconnects() int64 { return c.reconnects.Load() }

// RedactedURL returns the URL the client was built from, password hidden.
func (c *Client) RedactedURL() string { return c.url }

func unwrapClient(u redis.UniversalClient) redis.UniversalClient {
	if c, ok := u.(*Client); ok {
		return c.UniversalClient
	}
	return u
}

func applyDefaults(o *redis.UniversalOptions) {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.DialTimeout, DefaultDialTimeout)
	def(&o.ReadTimeout, DefaultReadTimeout)
	def(&o.WriteTimeout, DefaultWriteTimeout)
	def(&o.MinRetryBackoff, DefaultMinRetryBackoff)
	def(&o.MaxRetryBackoff, DefaultMaxRetryBackoff)
	if o.MaxRetries == 0 {
		o.MaxRetries = DefaultMaxRetries
	}
	if o.DialerRetries == 0 {
		o.DialerRetries = DefaultDialerRetries
	}
	if o.PoolSize == 0 {
		o.PoolSize = 10 * runtime.GOMAXPROCS(0)
	}
	if o.PoolTimeout == 0 && o.ReadTimeout > 0 {
		o.PoolTimeout = o.ReadTimeout + time.Second
	}
	o.ContextTimeoutEnabled = true
}

// ParseURL turns a URL of a form NewClient accepts into go-redis options,
// without defaults. Errors never contain the password.
func ParseURL(rawURL string) (*redis.UniversalOptions, error) {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return nil, fmt.Errorf("runtime: redis URL %q: missing scheme (redis://, rediss://, redis+cluster://, redis+sentinel://)", RedactURL(rawURL))
	}
	base, mode, _ := strings.Cut(scheme, "+")
	if base != "redis" && base != "rediss" {
		return nil, fmt.Errorf("runtime: redis URL %q: unknown scheme %q", RedactURL(rawURL), scheme)
	}
	userinfo, hostpart := "", rest
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		userinfo, hostpart = rest[:at+1], rest[at+1:]
	}
	hosts, tail := hostpart, ""
	if i := strings.IndexAny(hostpart, "/?"); i >= 0 {
		hosts, tail = hostpart[:i], hostpart[i:]
	}
	addrs := strings.Split(hosts, ",")
	bad := func(err error) error {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL, password included
		}
		return fmt.Errorf("runtime: redis URL %q: %w", RedactURL(rawURL), err)
	}
	switch mode {
	case "":
		if len(addrs) > 1 {
			return nil, bad(errors.New("several hosts: use redis+cluster:// or redis+sentinel://"))
		}
		o, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, bad(err)
		}
		return fromSimple(o, []string{o.Addr}), nil
	case "cluster":
		// go-redis spells extra seeds as ?addr=host:port.
		q := url.Values{}
		for _, a := range addrs[1:] {
			q.Add("addr", a)
		}
		u := base + "://" + userinfo + addrs[0] + addQuery(tail, q.Encode())
		o, err := redis.ParseClusterURL(u)
		if err != nil {
			return nil, bad(err)
		}
		return fromCluster(o), nil
	case "sentinel":
		path, query, _ := strings.Cut(tail, "?")
		segs := strings.Split(strings.Trim(path, "/"), "/")
		if segs[0] == "" {
			return nil, bad(errors.New("missing master name: redis+sentinel://host:port,host:port/mastername[/db]"))
		}
		master, db := segs[0], ""
		if len(segs) > 1 {
			db = "/" + segs[1]
		}
		if query != "" {
			query = "?" + query
		}
		// Parse the rest as a single-server URL to reuse go-redis's
		// options, then move them to a failover configuration.
		o, err := redis.ParseURL(base + "://" + userinfo + addrs[0] + db + query)
		if err != nil {
			return nil, bad(err)
		}
		uo := fromSimple(o, addrs)
		uo.MasterName = master
		return uo, nil
	default:
		return nil, bad(fmt.Errorf("unknown mode %q: want cluster or sentinel", mode))
	}
}

func addQuery(tail, q string) string {
	if q == "" {
		return tail
	}
	if strings.Contains(tail, "?") {
		return tail + "&" + q
	}
	return tail + "?" + q
}

func fromSimple(o *redis.Options, addrs []string) *redis.UniversalOptions {
	return &redis.UniversalOptions{
		Addrs: addrs, DB: o.DB, Username: o.Username, Password: o.Password, ClientName: o.ClientName,
		Protocol: o.Protocol, MaxRetries: o.MaxRetries, MinRetryBackoff: o.MinRetryBackoff, MaxRetryBackoff: o.MaxRetryBackoff,
		DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
		PoolFIFO: o.PoolFIFO, PoolSize: o.PoolSize, PoolTimeout: o.PoolTimeout, MinIdleConns: o.MinIdleConns,
		MaxIdleConns: o.MaxIdleConns, MaxActiveConns: o.MaxActiveConns, ConnMaxIdleTime: o.ConnMaxIdleTime,
		ConnMaxLifetime: o.ConnMaxLifetime, TLSConfig: o.TLSConfig,
	}
}

func fromCluster(o *redis.ClusterOptions) *redis.UniversalOptions {
	return &redis.UniversalOptions{
		Addrs: o.Addrs, Username: o.Username, Password: o.Password, ClientName: o.ClientName,
		Protocol: o.Protocol, MaxRetries: o.MaxRetries, MinRetryBackoff: o.MinRetryBackoff, MaxRetryBackoff: o.MaxRetryBackoff,
		DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
		PoolFIFO: o.PoolFIFO, PoolSize: o.PoolSize, PoolTimeout: o.PoolTimeout, MinIdleConns: o.MinIdleConns,
		MaxIdleConns: o.MaxIdleConns, MaxActiveConns: o.MaxActiveConns, ConnMaxIdleTime: o.ConnMaxIdleTime,
		ConnMaxLifetime: o.ConnMaxLifetime, TLSConfig: o.TLSConfig, MaxRedirects: o.MaxRedirects,
		ReadOnly: o.ReadOnly, RouteByLatency: o.RouteByLatency, RouteRandomly: o.RouteRandomly,
	}
}

// RedactURL hides the password of a Redis URL, also in the multi-host
// forms that net/url does not parse: "redis://user:xxxxx@host:6379/0".
func RedactURL(rawURL string) string {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		if strings.Contains(rawURL, "@") {
			return "xxxxx@" + rawURL[strings.LastIndex(rawURL, "@")+1:]
		}
		return rawURL
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return rawURL
	}
	user, _, hasPass := strings.Cut(rest[:at], ":")
	if !hasPass {
		// redis://password@host is read as a password by go-redis.
		return scheme + "://xxxxx@" + rest[at+1:]
	}
	return scheme + "://" + user + ":xxxxx@" + rest[at+1:]
}

// connHook logs connection events and counts reconnects.
type connHook struct{ c *Client }

func (h connHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := next(ctx, network, addr)
		c := h.c
		switch {
		case err != nil:
			// Only a failed dial marks an outage: a slow or stopped
			// server accepts connections and times out on them, which
			// go-redis answers with new connections, and those are not
			// reconnects.
			c.broken.Store(true)
			if ok, suppressed := c.errLog.allow(); ok {
				c.log.Warn("repocache: redis dial failed", "url", c.url, "addr", addr, "err", err, "suppressed", suppressed)
			}
		case c.broken.Swap(false):
			c.reconnects.Add(1)
			c.log.Info("repocache: redis reconnected", "url", c.url, "addr", addr)
		default:
			c.log.Debug("repocache: redis connected", "addr", addr)
		}
		return conn, err
	}
}

func (h connHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if err != nil {
			h.c.connError(err)
		}
		return err
	}
}

func (h connHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if err != nil {
			h.c.connError(err)
		}
		return err
	}
}

// connError logs, rate limited, an error that broke a connection (not a
// server reply, not a miss, not the caller's context).
func (c *Client) connError(err error) {
	var reply redis.Error
	if err == redis.Nil || errors.As(err, &reply) || isContextErr(err) {
		return
	}
	if ok, suppressed := c.errLog.allow(); ok {
		c.log.Warn("repocache: redis connection error", "url", c.url, "err", err, "suppressed", suppressed)
	}
}

// go-redis keeps one logger for the whole process, written without
// synchronisation in the versions we support: setting it while any client
// dials is a data race. So the runtime installs its bridge once, when the
// package is initialised (before any client can exist), and NewClient only
// changes, atomically, where the bridge writes: go-redis's own lines go to
// the last NewClient's logger (slog.Default() before the first), at WARN,
// at most one a second.
var goRedisLog = &redisLogger{limit: rateLimitedLog{every: time.Second}}

func init() { redis.SetLogger(goRedisLog) }

// redisLogger is go-redis's internal logger, routed through slog.
type redisLogger struct {
	target atomic.Pointer[slog.Logger]
	limit  rateLimitedLog
}

func (l *redisLogger) Printf(ctx context.Context, format string, v ...any) {
	log := l.target.Load()
	if log == nil {
		log = slog.Default()
	}
	if ok, suppressed := l.limit.allow(); ok {
		log.WarnContext(ctx, "go-redis: "+fmt.Sprintf(format, v...), "suppressed", suppressed)
	}
}
