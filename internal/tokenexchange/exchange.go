package tokenexchange

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/insforge/integrations-operator/internal/tokenexchange/config"
	"github.com/insforge/integrations-operator/internal/tokenexchange/jwks"
)

// Options build an Exchanger.
type Options struct {
	// Config is the exchange's configuration, defaults applied and validated.
	Config config.Config
	// HTTPClient fetches the providers' key sets (nil: a client per set; tests route it to a
	// fake issuer).
	HTTPClient *http.Client
	// Metrics may be nil.
	Metrics *Metrics
	// Logger may be nil (discarded).
	Logger *slog.Logger
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// KeyPollInterval is how often Run rereads the signing key file (0: KeyPollInterval).
	KeyPollInterval time.Duration
}

// Exchanger verifies provider tokens and mints InsForge tokens.
type Exchanger struct {
	cfg      config.Config
	verifier *Verifier
	sets     []*jwks.Set
	key      *KeyFile
	metrics  *Metrics
	log      *slog.Logger
	now      func() time.Time
	poll     time.Duration
}

// Result is a minted token.
type Result struct {
	AccessToken string
	// ExpiresIn is the minted token's lifetime in seconds.
	ExpiresIn int64
	Provider  string
	Subject   string
}

// New builds an exchanger: a key set per issuer (nothing fetched until Run) and the signing key
// file (read once now).
func New(o Options) (*Exchanger, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.KeyPollInterval <= 0 {
		o.KeyPollInterval = KeyPollInterval
	}
	cfg := o.Config
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Exchanger{cfg: cfg, metrics: o.Metrics, log: o.Logger, now: o.Now, poll: o.KeyPollInterval}
	sources := make([]KeySource, len(cfg.Issuers))
	for i, is := range cfg.Issuers {
		set, err := jwks.New(jwks.Options{
			URL: is.JWKSURL, Client: o.HTTPClient,
			RefreshInterval: cfg.JWKS.RefreshInterval.Duration, MinRefreshInterval: cfg.JWKS.MinRefreshInterval.Duration,
			FetchTimeout: cfg.JWKS.FetchTimeout.Duration,
			Logger:       o.Logger.With("provider", is.Provider),
			OnFetch: func(result string, keys int) {
				e.metrics.fetched(is.Provider, result)
				e.metrics.keys(is.Provider, is.JWKSURL, keys)
			},
		})
		if err != nil {
			return nil, fmt.Errorf("issuers[%d]: %w", i, err)
		}
		e.sets = append(e.sets, set)
		sources[i] = set
	}
	v, err := NewVerifier(cfg.Issuers, sources, o.Now)
	if err != nil {
		return nil, err
	}
	e.verifier = v
	e.key = NewKeyFile(cfg.SigningKeyFile, o.Logger, o.Metrics.signingKey)
	return e, nil
}

// Run refreshes every issuer's keys and rereads the signing key file until ctx ends.
func (e *Exchanger) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, s := range e.sets {
		wg.Go(func() { s.Run(ctx) })
	}
	wg.Go(func() { e.key.Run(ctx, e.poll) })
	wg.Wait()
}

// Ready is nil when a signing key is loaded and every issuer's keys have been fetched.
func (e *Exchanger) Ready() error {
	var errs []error
	if err := e.key.Ready(); err != nil {
		errs = append(errs, err)
	}
	for i, s := range e.sets {
		if !s.Ready() {
			err := s.Err()
			if err == nil {
				err = errors.New("not fetched yet")
			}
			errs = append(errs, fmt.Errorf("%s keys (%s): %w", e.cfg.Issuers[i].Provider, s.URL(), err))
		}
	}
	return errors.Join(errs...)
}

// KeyFile is the signing key (Reload it to pick a change up before the next poll).
func (e *Exchanger) KeyFile() *KeyFile { return e.key }

// Exchange verifies a provider token and mints the InsForge token for its subject. Errors are
// *Error.
func (e *Exchanger) Exchange(ctx context.Context, token string) (Result, error) {
	start := time.Now()
	res, err := e.exchange(ctx, token)
	outcome := ReasonOK
	if err != nil {
		var xe *Error
		if !errors.As(err, &xe) {
			xe = &Error{Reason: ReasonSigningKeyUnavailable}
			e.log.Error("minting failed", "error", err)
			err = xe
		}
		outcome = xe.Reason
		e.log.Debug("exchange refused", "provider", res.Provider, "reason", outcome)
	}
	e.metrics.exchanged(res.Provider, outcome, time.Since(start).Seconds())
	return res, err
}

func (e *Exchanger) exchange(ctx context.Context, token string) (Result, error) {
	// Before verifying: no CPU is spent on a token that could not be answered anyway.
	key := e.key.current()
	if key == nil {
		return Result{}, fail(ReasonSigningKeyUnavailable)
	}
	id, err := e.verifier.Verify(ctx, token)
	res := Result{Provider: id.Provider}
	if err != nil {
		return res, err
	}
	claims, ok := claimsFor(id, e.now(), e.cfg.Token.Lifetime.Duration, e.cfg.Token.Audience, e.cfg.Token.Issuer)
	if !ok {
		return res, fail(ReasonExpired)
	}
	tok, err := mint(claims, key.secret)
	if err != nil {
		return res, err
	}
	res.AccessToken, res.ExpiresIn, res.Subject = tok, claims.Exp-claims.Iat, id.Subject
	return res, nil
}
