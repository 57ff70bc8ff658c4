package github

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	gh "github.com/google/go-github/v60/github"
	"golang.org/x/oauth2"

	"github.com/hero-dev/hero/store"
)

// Credentials give the token hero uses for one repository's API calls and
// git commands. Implementations cache and refresh as needed and are safe
// for concurrent use.
type Credentials interface {
	// Token returns a token valid for repo for at least a few minutes.
	Token(ctx context.Context, repo Repo) (string, error)
}

// StaticToken is a personal access token or GITHUB_TOKEN: the simplest
// setup, one token for every repository.
type StaticToken string

// Token returns the token itself.
func (t StaticToken) Token(context.Context, Repo) (string, error) {
	if t == "" {
		return "", errors.New("no GitHub token is configured")
	}
	return string(t), nil
}

// AppCredentials authenticate as a GitHub App: a JWT signed with the App's
// private key (RS256) buys an installation token for the repository's
// installation, valid one hour; tokens are cached and minted again before
// they expire.
type AppCredentials struct {
	appID  int64
	key    *rsa.PrivateKey
	client func(TokenFunc) (clientDoer, error)
	// Margin is how long before expiry a token is replaced (default 5 min).
	Margin time.Duration
	// onToken, when set, sees every new token (WithOnToken).
	onToken func(token string)
	now     func() time.Time

	mu            sync.Mutex
	installations map[Repo]int64
	tokens        map[int64]appToken
	mints         int
}

type appToken struct {
	token   string
	expires time.Time
}

// clientDoer is the part of the API the App credentials call.
type clientDoer interface {
	findInstallation(ctx context.Context, repo Repo) (int64, error)
	mintToken(ctx context.Context, installation int64) (string, time.Time, error)
}

// ParsePrivateKey reads a GitHub App private key in PEM (PKCS#1 as GitHub
// issues it, or PKCS#8). Escaped newlines ("\n" as two characters, as
// environment files often hold them) are accepted.
func ParsePrivateKey(pemText string) (*rsa.PrivateKey, error) {
	if !strings.Contains(pemText, "\n") {
		pemText = strings.ReplaceAll(pemText, `\n`, "\n")
	}
	block, _ := pem.Decode([]byte(pemText))
	if block == nil {
		return nil, errors.New("GITHUB_APP_PRIVATE_KEY is not a PEM private key")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("GITHUB_APP_PRIVATE_KEY: %w", err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("GITHUB_APP_PRIVATE_KEY is not an RSA key")
	}
	return rk, nil
}

// JWT returns a token that authenticates as the App itself (for
// /app/... endpoints), valid nine minutes (GitHub allows ten; iat is set a
// minute back for clock drift).
func (a *AppCredentials) JWT() (string, error) {
	now := time.Now() // GitHub checks it against its own clock
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`))
	claims, _ := json.Marshal(map[string]any{"iat": now.Add(-time.Minute).Unix(), "exp": now.Add(9 * time.Minute).Unix(), "iss": fmt.Sprint(a.appID)})
	signing := header + "." + base64.RawURLEncoding.EncodeToString(claims)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, a.key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("sign github app jwt: %w", err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// Remember records the installation a delivery came from, saving a lookup.
func (a *AppCredentials) Remember(repo Repo, installation int64) {
	if installation == 0 {
		return
	}
	a.mu.Lock()
	a.installations[repo] = installation
	a.mu.Unlock()
}

// Mints counts installation tokens minted (for tests and logs).
func (a *AppCredentials) Mints() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.mints
}

// Token returns the installation token for repo, minting one when none is
// cached or the cached one expires within Margin.
func (a *AppCredentials) Token(ctx context.Context, repo Repo) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock() // one mint at a time: GitHub would issue several otherwise
	c, err := a.client(func(context.Context) (string, error) { return a.JWT() })
	if err != nil {
		return "", err
	}
	inst, ok := a.installations[repo]
	if !ok {
		if inst, err = c.findInstallation(ctx, repo); err != nil {
			return "", fmt.Errorf("find the github app installation of %s: %w", repo, err)
		}
		a.installations[repo] = inst
	}
	if t, ok := a.tokens[inst]; ok && a.now().Add(a.Margin).Before(t.expires) {
		return t.token, nil
	}
	tok, exp, err := c.mintToken(ctx, inst)
	if err != nil {
		return "", fmt.Errorf("mint a token for github app installation %d: %w", inst, err)
	}
	a.tokens[inst] = appToken{token: tok, expires: exp}
	a.mints++
	if a.onToken != nil {
		a.onToken(tok)
	}
	return tok, nil
}

// TokenStore persists OAuth tokens; *store.DB implements it.
type TokenStore interface {
	GitHubToken(ctx context.Context, account string) (store.OAuthToken, error)
	SaveGitHubToken(ctx context.Context, account string, tok store.OAuthToken) error
}

// OAuthCredentials use a user's OAuth token (from the web login). When it
// is about to expire it is refreshed through golang.org/x/oauth2 and the
// new pair is saved at once: GitHub rotates the refresh token, and the old
// one stops working.
type OAuthCredentials struct {
	cfg     *oauth2.Config
	store   TokenStore
	account string
	client  *http.Client
	// Margin is how long before expiry a token is refreshed (default 1 min).
	Margin time.Duration
	// onToken, when set, sees every token loaded or refreshed
	// (WithOnToken).
	onToken func(token string)
	now     func() time.Time

	mu     sync.Mutex
	cached *store.OAuthToken
}

// NewOAuthCredentials returns credentials acting as account, whose token
// the web login saved in ts. tokenURL is GitHub's
// https://github.com/login/oauth/access_token (or the Enterprise host's).
func NewOAuthCredentials(clientID, clientSecret, tokenURL, account string, ts TokenStore, client *http.Client, opts ...CredentialsOption) (*OAuthCredentials, error) {
	if clientID == "" || clientSecret == "" || tokenURL == "" || account == "" || ts == nil {
		return nil, errors.New("github oauth: client id, client secret, token URL, account and token store are required")
	}
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	return &OAuthCredentials{
		cfg: &oauth2.Config{ClientID: clientID, ClientSecret: clientSecret,
			Endpoint: oauth2.Endpoint{TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInParams}},
		store: ts, account: account, client: client, Margin: time.Minute, now: time.Now,
		onToken: credentialsOptionsOf(opts).onToken,
	}, nil
}

// CredentialsOption configures NewAppCredentials and NewOAuthCredentials.
type CredentialsOption func(*credentialsOptions)

type credentialsOptions struct{ onToken func(string) }

// WithOnToken has fn see every token the credentials get, new or loaded,
// before it is used (to teach the log and output redactor its value).
func WithOnToken(fn func(token string)) CredentialsOption {
	return func(o *credentialsOptions) { o.onToken = fn }
}

func credentialsOptionsOf(opts []CredentialsOption) credentialsOptions {
	var o credentialsOptions
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// Token returns the account's access token, refreshed (and persisted) when
// it expires within Margin.
func (o *OAuthCredentials) Token(ctx context.Context, _ Repo) (string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cached == nil {
		t, err := o.store.GitHubToken(ctx, o.account)
		if err != nil {
			return "", fmt.Errorf("github oauth token of %s (log in on the settings page): %w", o.account, err)
		}
		o.cached = &t
		if o.onToken != nil {
			o.onToken(t.AccessToken)
		}
	}
	t := *o.cached
	if t.Expiry.IsZero() || o.now().Add(o.Margin).Before(t.Expiry) {
		return t.AccessToken, nil
	}
	if t.RefreshToken == "" {
		return "", fmt.Errorf("the github oauth token of %s expired and has no refresh token; log in again on the settings page", o.account)
	}
	// Expiry in the past makes oauth2 refresh now.
	old := &oauth2.Token{AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, Expiry: time.Unix(1, 0)}
	nt, err := o.cfg.TokenSource(context.WithValue(ctx, oauth2.HTTPClient, o.client), old).Token()
	if err != nil {
		return "", fmt.Errorf("refresh the github oauth token of %s: %w", o.account, redactOAuthErr(err))
	}
	next := store.OAuthToken{AccessToken: nt.AccessToken, RefreshToken: nt.RefreshToken, Expiry: nt.Expiry}
	if next.RefreshToken == "" {
		next.RefreshToken = t.RefreshToken
	}
	if err := o.store.SaveGitHubToken(ctx, o.account, next); err != nil {
		return "", fmt.Errorf("save the refreshed github token of %s: %w", o.account, err)
	}
	o.cached = &next
	if o.onToken != nil {
		o.onToken(next.AccessToken)
	}
	return next.AccessToken, nil
}

// redactOAuthErr keeps the status of a failed refresh but not the response
// body, which may echo tokens.
func redactOAuthErr(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.ErrorCode != "" {
			return fmt.Errorf("token endpoint said %s", re.ErrorCode)
		}
		if re.Response != nil {
			return fmt.Errorf("token endpoint answered %s", re.Response.Status)
		}
	}
	return err
}

// NewAppCredentials returns GitHub App credentials for apiURL ("" is
// api.github.com). base, when set, carries the requests (tests).
func NewAppCredentials(appID int64, key *rsa.PrivateKey, apiURL string, base http.RoundTripper, opts ...CredentialsOption) (*AppCredentials, error) {
	if appID <= 0 || key == nil {
		return nil, errors.New("github app: GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY are required")
	}
	rl := newRateLimiter(base, 0, time.Minute)
	if _, err := newClient(apiURL, rl, nil); err != nil {
		return nil, err
	}
	return &AppCredentials{
		appID: appID, key: key, Margin: 5 * time.Minute, now: time.Now, onToken: credentialsOptionsOf(opts).onToken,
		installations: map[Repo]int64{}, tokens: map[int64]appToken{},
		client: func(jwt TokenFunc) (clientDoer, error) {
			c, err := newClient(apiURL, rl, jwt)
			return appAPI{c}, err
		},
	}, nil
}

type appAPI struct{ c *gh.Client }

func (a appAPI) findInstallation(ctx context.Context, repo Repo) (int64, error) {
	inst, _, err := a.c.Apps.FindRepositoryInstallation(ctx, repo.Owner, repo.Name)
	if err != nil {
		return 0, err
	}
	return inst.GetID(), nil
}

func (a appAPI) mintToken(ctx context.Context, installation int64) (string, time.Time, error) {
	t, _, err := a.c.Apps.CreateInstallationToken(ctx, installation, nil)
	if err != nil {
		return "", time.Time{}, err
	}
	return t.GetToken(), t.GetExpiresAt().Time, nil
}

// Login returns the account the App's comments appear as: "<slug>[bot]".
func (a *AppCredentials) Login(ctx context.Context) (string, error) {
	c, err := a.client(func(context.Context) (string, error) { return a.JWT() })
	if err != nil {
		return "", err
	}
	api, ok := c.(appAPI)
	if !ok {
		return "", errors.New("github app: no API client")
	}
	app, _, err := api.c.Apps.Get(ctx, "")
	if err != nil {
		return "", fmt.Errorf("read the github app: %w", err)
	}
	return app.GetSlug() + "[bot]", nil
}
