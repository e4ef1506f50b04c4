package sessions

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/visage-idp/visage/authn/sessions/webhook"
	"github.com/visage-idp/visage/store"
)

// Run runs the background work until ctx ends: the webhook dispatcher, the expiry of open
// sessions, and the purge of results past their application's retention.
func (s *Service) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); s.dispatch(ctx) }()
	go func() {
		defer wg.Done()
		s.every(ctx, s.cfg.ExpireInterval, func() {
			if n, err := s.ExpireDue(ctx); err != nil {
				s.log.ErrorContext(ctx, "session expiry", "err", err)
			} else if n > 0 {
				s.log.InfoContext(ctx, "sessions expired", "count", n)
			}
		})
	}()
	go func() {
		defer wg.Done()
		s.every(ctx, s.cfg.PurgeInterval, func() {
			if n, err := s.PurgeResults(ctx); err != nil {
				s.log.ErrorContext(ctx, "session purge", "err", err)
			} else if n > 0 {
				s.log.InfoContext(ctx, "sessions purged", "count", n)
			}
		})
	}()
	wg.Wait()
}

// every runs fn now and then every interval until ctx ends.
func (s *Service) every(ctx context.Context, interval time.Duration, fn func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		fn()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// dispatch delivers due webhooks whenever woken, and at least every PollInterval.
func (s *Service) dispatch(ctx context.Context) {
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		for {
			n, err := s.DeliverDue(ctx)
			if err != nil && ctx.Err() == nil {
				s.log.ErrorContext(ctx, "webhook dispatch", "err", err)
			}
			if n == 0 || err != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-t.C:
		}
	}
}

// dispatchBatch is how many deliveries one pass leases and sends (concurrently).
const dispatchBatch = 8

// DeliverDue leases the due deliveries (a batch) and sends them; it returns how many it
// attempted. Each is leased for the attempt's timeout plus a margin, so a delivery held by a
// process that died is taken over once the lease runs out, and never while another process
// is sending it.
func (s *Service) DeliverDue(ctx context.Context) (int, error) {
	now := s.now()
	batch, err := s.st.ClaimDeliveries(ctx, now, now.Add(s.cfg.WebhookTimeout+10*time.Second), dispatchBatch)
	if err != nil {
		return 0, fmt.Errorf("deliver webhooks: %w", err)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(batch))
	for i, d := range batch {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.deliver(ctx, d)
		}()
	}
	wg.Wait()
	return len(batch), errors.Join(errs...)
}

// deliver makes one attempt at a leased delivery and records it.
func (s *Service) deliver(ctx context.Context, d store.WebhookDelivery) error {
	app, err := s.st.GetApplication(ctx, d.AppID)
	if err != nil {
		return fmt.Errorf("deliver %s: %w", d.ID, err)
	}
	start := s.now()
	a := store.DeliveryAttempt{DeliveryID: d.ID, At: start}
	var o store.DeliveryOutcome
	switch {
	case app.WebhookURL == "":
		a.Error = "the application has no webhook URL"
		o = store.DeliveryOutcome{State: store.DeliveryFailed, LastError: a.Error}
	case !start.Before(d.GiveUpAt):
		a.Error = "the retry horizon passed before this attempt"
		o = store.DeliveryOutcome{State: store.DeliveryFailed, LastError: a.Error}
	default:
		a.StatusCode, err = s.post(ctx, app, d, start)
		a.Duration = s.now().Sub(start)
		if err != nil {
			a.Error = err.Error()
		}
		o = s.outcome(d, a)
	}
	if ctx.Err() != nil && a.StatusCode == 0 {
		// Shutting down mid-attempt: leave the lease to run out, the next process retries.
		return nil
	}
	if err := s.st.FinishDeliveryAttempt(context.WithoutCancel(ctx), d.LeaseToken, a, o); err != nil {
		return fmt.Errorf("deliver %s: %w", d.ID, err)
	}
	s.log.InfoContext(ctx, "webhook attempt", "event", d.ID, "session", d.SessionID, "status", d.Status, "attempt", d.Attempts+1,
		"code", a.StatusCode, "state", o.State, "err", a.Error)
	return nil
}

// post sends the webhook, stamped and signed now, and returns the response code.
func (s *Service) post(ctx context.Context, app store.Application, d store.WebhookDelivery, now time.Time) (int, error) {
	body, sig, err := webhook.Prepare(app.WebhookSecret, d.Payload, now)
	if err != nil {
		return 0, fmt.Errorf("prepare: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WebhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, app.WebhookURL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Visage-Webhooks/1")
	sig.Set(req.Header)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return resp.StatusCode, nil
}

// retryable reports whether an attempt's failure is worth retrying: no response (network
// error, timeout), 5xx, 404 (a receiver being deployed), 408 and 429.
func retryable(code int) bool {
	return code == 0 || code >= 500 || code == http.StatusNotFound || code == http.StatusRequestTimeout || code == http.StatusTooManyRequests
}

// outcome decides what follows an attempt.
func (s *Service) outcome(d store.WebhookDelivery, a store.DeliveryAttempt) store.DeliveryOutcome {
	if a.Error == "" {
		return store.DeliveryOutcome{State: store.DeliveryDelivered}
	}
	if !retryable(a.StatusCode) {
		return store.DeliveryOutcome{State: store.DeliveryFailed, LastError: a.Error + " (not retried)"}
	}
	next := a.At.Add(Backoff(d.Attempts+1, s.cfg.RetryMin, s.cfg.RetryMax, rand.Float64()))
	if !next.Before(d.GiveUpAt) {
		return store.DeliveryOutcome{State: store.DeliveryFailed, LastError: a.Error + " (retry horizon reached)"}
	}
	return store.DeliveryOutcome{State: store.DeliveryPending, NextAttemptAt: next, LastError: a.Error}
}

// Backoff is the delay after the n-th failed attempt (n >= 1): lo·2^(n-1), capped at hi,
// with "equal jitter": half of it fixed, the other half scaled by u in [0,1).
func Backoff(n int, lo, hi time.Duration, u float64) time.Duration {
	d := hi
	if n >= 1 && n < 40 {
		if e := lo << (n - 1); e > 0 && e < hi {
			d = e
		}
	}
	return d/2 + time.Duration(u*float64(d/2))
}
