// Package fakeslack is a fake Slack for end-to-end tests: the Socket Mode
// websocket (hello, envelopes, acks, pings, disconnects), the Web API
// methods secretbot calls, response_url endpoints, and the upload URLs
// files.getUploadURLExternal hands out. It speaks the JSON
// shapes slack-go v0.35.0 decodes and records everything it is sent.
package fakeslack

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secretbot/secretbot/e2e/internal/fault"
	"github.com/secretbot/secretbot/e2e/internal/watch"
)

// Defaults used when no option overrides them.
const (
	DefaultBotToken        = "xoxb-test-0000-fakeslack"
	DefaultAppToken        = "xapp-test-1-A0TEST-fakeslack"
	VerificationToken      = "fake-verification-token"
	DefaultTeamID          = "T0TEST"
	DefaultTeamDomain      = "lumi-test"
	DefaultAppID           = "A0TEST"
	DefaultCommand         = "/secrets"
	DefaultChannel         = "C0GENERAL"
	BotUserID              = "U0SECRETBOT"
	BotID                  = "B0SECRETBOT"
	defaultPingInterval    = 2 * time.Second
	defaultDisconnectGrace = 2 * time.Second
	defaultTriggerLife     = 3 * time.Second
	maxSocketFrame         = 20 * 1024
	responseURLPathPrefix  = "/respond/"
	socketPath             = "/link"
	apiPathPrefix          = "/api/"
	defaultChannelName     = "general"
	fakeSlackHost          = "fake"
)

type config struct {
	botToken, appToken string
	teamID, teamDomain string
	command            string
	pingInterval       time.Duration
	disconnectGrace    time.Duration
	triggerLife        time.Duration
	redeliverAfter     time.Duration
	now                func() time.Time
}

// Option configures a Server.
type Option func(*config)

// WithTokens sets the bot (xoxb-) and app-level (xapp-) tokens the server accepts.
func WithTokens(bot, app string) Option {
	return func(c *config) { c.botToken, c.appToken = bot, app }
}

// WithPingInterval sets how often websocket pings are sent; 0 disables them.
func WithPingInterval(d time.Duration) Option {
	return func(c *config) { c.pingInterval = d }
}

// WithCommand sets the slash command SendSlashCommand uses.
func WithCommand(cmd string) Option {
	return func(c *config) { c.command = cmd }
}

// WithTeam sets the workspace id and domain.
func WithTeam(id, domain string) Option {
	return func(c *config) { c.teamID, c.teamDomain = id, domain }
}

// WithDisconnectGrace sets how long after a disconnect message the server
// closes a connection the client has not closed itself.
func WithDisconnectGrace(d time.Duration) Option {
	return func(c *config) { c.disconnectGrace = d }
}

// WithRedelivery makes the server redeliver envelopes as Slack does when
// they are not acked: each one unacked after d is sent again (retry_attempt
// +1, retry_reason "timeout", up to 3 retries), and those unacked on a
// connection that closes are sent again on the next one at once.
func WithRedelivery(d time.Duration) Option {
	return func(c *config) { c.redeliverAfter = d }
}

// WithTriggerLife sets how long a trigger_id can open a view (Slack: 3s).
func WithTriggerLife(d time.Duration) Option {
	return func(c *config) { c.triggerLife = d }
}

// Server is a running fake Slack. All methods are safe for concurrent use.
type Server struct {
	// URL is the server's base URL; the Web API lives under URL+"/api".
	URL string

	cfg     config
	srv     *httptest.Server
	faults  fault.Set
	changed watch.Notifier
	wg      sync.WaitGroup
	done    chan struct{}

	mu            sync.Mutex
	closed        bool
	public        string // SetPublicURL
	authFail      string
	seq           int
	tsSeq         int
	tickets       map[string]bool
	conns         map[int]*wsConn
	opened        int
	envs          map[string]*envelope
	envOrder      []string
	pendingFrames []*envelope
	redelivered   int
	acks          map[string][]Ack
	dropped       []Ack
	calls         []Call
	users         map[string]User
	groups        []Group
	messages      []*Message
	responses     []Response
	views         []View
	homes         map[string]View
	triggers      map[string]*trigger
	respond       map[string]*respondTarget
	files         map[string]*File
	fileOrder     []string
	groupUpdates  []GroupUpdate
}

// New starts a fake Slack and closes it when the test ends.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	cfg := config{
		botToken:        DefaultBotToken,
		appToken:        DefaultAppToken,
		teamID:          DefaultTeamID,
		teamDomain:      DefaultTeamDomain,
		command:         DefaultCommand,
		pingInterval:    defaultPingInterval,
		disconnectGrace: defaultDisconnectGrace,
		triggerLife:     defaultTriggerLife,
		now:             time.Now,
	}
	for _, o := range opts {
		o(&cfg)
	}
	s := &Server{
		cfg:      cfg,
		done:     make(chan struct{}),
		tickets:  map[string]bool{},
		conns:    map[int]*wsConn{},
		envs:     map[string]*envelope{},
		acks:     map[string][]Ack{},
		users:    map[string]User{},
		homes:    map[string]View{},
		triggers: map[string]*trigger{},
		respond:  map[string]*respondTarget{},
		files:    map[string]*File{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc(socketPath, s.handleLink)
	mux.HandleFunc(apiPathPrefix, s.handleAPI)
	mux.HandleFunc(responseURLPathPrefix, s.handleRespond)
	mux.HandleFunc(uploadPathPrefix, s.handleUpload)
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL
	t.Cleanup(s.Close)
	if cfg.redeliverAfter > 0 {
		s.wg.Add(1)
		go s.redeliverLoop()
	}
	return s
}

// APIURL is the value for SLACK_API_URL (no trailing slash).
func (s *Server) APIURL() string { return s.URL + strings.TrimSuffix(apiPathPrefix, "/") }

// BotToken returns the bot token the server accepts.
func (s *Server) BotToken() string { return s.cfg.botToken }

// AppToken returns the app-level token the server accepts.
func (s *Server) AppToken() string { return s.cfg.appToken }

// Close drops every websocket, stops the HTTP server and waits for the
// server's goroutines. It is idempotent.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.done)
	conns := make([]*wsConn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
	s.srv.CloseClientConnections()
	s.srv.Close()
	s.wg.Wait()
	s.changed.Fire()
}

// AuthFail makes auth.test and apps.connections.open answer
// {"ok":false,"error":code}; "" restores normal answers.
func (s *Server) AuthFail(code string) {
	s.mu.Lock()
	s.authFail = code
	s.mu.Unlock()
}

// SetDelay delays every answer to a Web API method ("chat.postMessage"), to
// "respond" (response_url posts) or to "upload" (file bytes posted to an
// upload URL); 0 removes the delay. A method has one
// fault at a time: SetDelay, SetFailure and SetError replace each other
// (SetFault sets status and delay together).
func (s *Server) SetDelay(method string, d time.Duration) {
	if d == 0 {
		s.faults.Clear(method)
		return
	}
	s.faults.Put(method, fault.Fault{Delay: d})
}

// SetFailure makes a method answer with an HTTP status (429 comes with
// Retry-After: 1); 0 removes the failure.
func (s *Server) SetFailure(method string, status int) {
	if status == 0 {
		s.faults.Clear(method)
		return
	}
	s.faults.Put(method, fault.Fault{Status: status})
}

// SetFault installs a full fault (status, Retry-After, delay, count) for a method.
func (s *Server) SetFault(method string, f fault.Fault) { s.faults.Put(method, f) }

// SetError makes a method answer {"ok":false,"error":code} (HTTP 200), the
// way Slack reports most errors; "" removes it.
func (s *Server) SetError(method, code string) {
	if code == "" {
		s.faults.Clear(method)
		return
	}
	s.faults.Put(method, fault.Fault{Status: http.StatusOK, Body: `{"ok":false,"error":"` + code + `"}`})
}

// SetPublicURL makes response_urls start with base instead of URL, e.g. a
// proxy in front of the server that a test can take down; "" restores URL.
// (The websocket URL already follows the host the client asked.)
func (s *Server) SetPublicURL(base string) {
	s.mu.Lock()
	s.public = strings.TrimSuffix(base, "/")
	s.mu.Unlock()
}

// publicURL is the base of response_urls; callers may hold s.mu.
func (s *Server) publicURL() string {
	if s.public != "" {
		return s.public
	}
	return s.URL
}

// nextID returns a fresh sequence number; callers hold s.mu.
func (s *Server) nextID() int {
	s.seq++
	return s.seq
}

func (s *Server) now() time.Time { return s.cfg.now() }
