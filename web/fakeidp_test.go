package web_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeIdP is an OAuth 2.0 / OpenID Connect provider speaking the wire
// format of Google's and GitHub's endpoints: /authorize (approves at once
// as the person set with as), /token (checks the client, the code, the
// redirect URI and the PKCE verifier), /jwks, and GitHub's /api/user and
// /api/user/emails.
type fakeIdP struct {
	t            testing.TB
	srv          *httptest.Server
	key          *rsa.PrivateKey
	kid          string
	clientID     string
	clientSecret string

	mu     sync.Mutex
	who    fakePerson
	codes  map[string]fakeGrant
	tokens map[string]fakePerson
	// signWith, when set, signs ID tokens with another key (forgery).
	signWith *rsa.PrivateKey
	// nonce, when set, replaces the nonce in ID tokens (replay).
	nonce string
	// authorizeHits counts /authorize requests.
	authorizeHits int
	// now is the provider's clock (ID token iat/exp), shared with the
	// settings page's in tests that move time.
	now func() time.Time
}

type fakePerson struct {
	Sub, Email, Name, Login string
	Unverified              bool
}

type fakeGrant struct {
	challenge, redirect, nonce string
	who                        fakePerson
}

func newFakeIdP(t testing.TB) *fakeIdP {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeIdP{t: t, key: key, kid: "k1", clientID: "client-123", clientSecret: "shh-client-secret",
		codes: map[string]fakeGrant{}, tokens: map[string]fakePerson{}, now: time.Now}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /authorize", f.authorize)
	mux.HandleFunc("POST /token", f.token)
	mux.HandleFunc("GET /jwks", f.jwks)
	mux.HandleFunc("GET /api/user", f.user)
	mux.HandleFunc("GET /api/user/emails", f.emails)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// as sets who the next logins are.
func (f *fakeIdP) as(p fakePerson) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p.Sub == "" {
		p.Sub = "sub-" + p.Email
	}
	if p.Login == "" {
		p.Login = strings.Split(p.Email, "@")[0]
	}
	f.who = p
}

func (f *fakeIdP) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f.mu.Lock()
	f.authorizeHits++
	who := f.who
	f.mu.Unlock()
	switch {
	case q.Get("client_id") != f.clientID:
		http.Error(w, "unknown client", http.StatusBadRequest)
		return
	case q.Get("response_type") != "code":
		http.Error(w, "response_type must be code", http.StatusBadRequest)
		return
	case q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "":
		http.Error(w, "PKCE (S256) is required", http.StatusBadRequest)
		return
	case q.Get("state") == "":
		http.Error(w, "state is required", http.StatusBadRequest)
		return
	}
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || redirect.Host == "" {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	code := fmt.Sprintf("code-%d", time.Now().UnixNano())
	f.mu.Lock()
	f.codes[code] = fakeGrant{challenge: q.Get("code_challenge"), redirect: redirect.String(), nonce: q.Get("nonce"), who: who}
	f.mu.Unlock()
	rq := redirect.Query()
	rq.Set("code", code)
	rq.Set("state", q.Get("state"))
	redirect.RawQuery = rq.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

func (f *fakeIdP) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	oauthErr := func(code, desc string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
	}
	if id != f.clientID || secret != f.clientSecret {
		oauthErr("invalid_client", "bad client credentials")
		return
	}
	f.mu.Lock()
	g, found := f.codes[r.PostForm.Get("code")]
	delete(f.codes, r.PostForm.Get("code"))
	f.mu.Unlock()
	if !found || r.PostForm.Get("grant_type") != "authorization_code" {
		oauthErr("invalid_grant", "unknown or used code")
		return
	}
	if r.PostForm.Get("redirect_uri") != g.redirect {
		oauthErr("invalid_grant", "redirect_uri differs")
		return
	}
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
		oauthErr("invalid_grant", "PKCE verification failed")
		return
	}
	access := fmt.Sprintf("at-%d", time.Now().UnixNano())
	f.mu.Lock()
	f.tokens[access] = g.who
	nonce := g.nonce
	if f.nonce != "" {
		nonce = f.nonce
	}
	signer := f.key
	if f.signWith != nil {
		signer = f.signWith
	}
	f.mu.Unlock()
	idToken := f.sign(signer, map[string]any{
		"iss": f.srv.URL, "aud": f.clientID, "sub": g.who.Sub, "email": g.who.Email,
		"email_verified": !g.who.Unverified, "name": g.who.Name, "nonce": nonce,
		"iat": f.now().Unix(), "exp": f.now().Add(time.Hour).Unix(),
	})
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"access_token": access, "refresh_token": "r" + access, "token_type": "Bearer", "expires_in": 28800, "id_token": idToken, "scope": "openid email profile"})
}

func (f *fakeIdP) sign(key *rsa.PrivateKey, claims map[string]any) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := enc(map[string]string{"alg": "RS256", "kid": f.kid, "typ": "JWT"}) + "." + enc(claims)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		f.t.Error(err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func (f *fakeIdP) jwks(w http.ResponseWriter, r *http.Request) {
	pub := f.key.PublicKey
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "kid": f.kid, "use": "sig", "alg": "RS256",
		"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}}})
}

func (f *fakeIdP) bearer(w http.ResponseWriter, r *http.Request) (fakePerson, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	if !ok {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest"}`)
	}
	return p, ok
}

func (f *fakeIdP) user(w http.ResponseWriter, r *http.Request) {
	p, ok := f.bearer(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"login": p.Login, "id": 1, "name": p.Name, "email": nil})
}

func (f *fakeIdP) emails(w http.ResponseWriter, r *http.Request) {
	p, ok := f.bearer(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode([]map[string]any{
		{"email": p.Login + "@users.noreply.github.com", "primary": false, "verified": true, "visibility": nil},
		{"email": p.Email, "primary": true, "verified": !p.Unverified, "visibility": "public"},
	})
}
