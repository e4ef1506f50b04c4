package sessions

import (
	"net/http"
	"testing"
	"time"

	"github.com/visage-idp/visage/store"
)

// TestApplicationScope: an application that knows only a username cannot match faces against
// that user's enrolled face unless the operator linked the user to it; an unlinked user and a
// username that does not exist get the same answer, so the API cannot be used to probe names.
func TestApplicationScope(t *testing.T) {
	e := newEnv(t, nil)
	e.workflow("wf", FeatureLiveness, FeatureFaceMatch)
	photo := lfwPhoto(t, "Anthony_Hopkins", 1)
	victim := e.enrolUnlinked("victim", photo)
	other, otherKey, _ := e.newApp("app-2", false)

	_, unknown := e.api(http.MethodPost, "/v3/session/", e.key, map[string]any{"workflow_id": "wf", "vendor_data": "no-such-user"})
	code, unlinked := e.api(http.MethodPost, "/v3/session/", e.key, map[string]any{"workflow_id": "wf", "vendor_data": "victim"})
	if code != http.StatusBadRequest || string(unlinked) != string(unknown) {
		t.Fatalf("unlinked user: %d %s; unknown user: %s (want the same 400)", code, unlinked, unknown)
	}
	// Linked to another application: still out of reach for this one.
	if err := e.st.LinkUser(e.ctx, other.ID, victim.ID, "operator", time.Now()); err != nil {
		t.Fatal(err)
	}
	if code, b := e.api(http.MethodPost, "/v3/session/", e.key, map[string]any{"workflow_id": "wf", "vendor_data": "victim"}); code != http.StatusBadRequest || string(b) != string(unknown) {
		t.Fatalf("user linked to another application: %d %s", code, b)
	}
	if code, b := e.api(http.MethodPost, "/v3/session/", otherKey, map[string]any{"workflow_id": "wf", "vendor_data": "victim"}); code != http.StatusCreated {
		t.Fatalf("the linked application: %d %s", code, b)
	}
	if err := e.st.LinkUser(e.ctx, e.app.ID, victim.ID, "operator", time.Now()); err != nil {
		t.Fatal(err)
	}
	if code, b := e.api(http.MethodPost, "/v3/session/", e.key, map[string]any{"workflow_id": "wf", "vendor_data": "victim"}); code != http.StatusCreated {
		t.Fatalf("after linking: %d %s", code, b)
	}
}

// TestCreateConflict: a second create for an open session that brings another portrait,
// callback or metadata is refused with 409 instead of silently answering with the old session;
// the same request again, or one that leaves those fields out, gets the open session.
func TestCreateConflict(t *testing.T) {
	e := newEnv(t, nil)
	e.workflow("wf", FeatureLiveness, FeatureFaceMatch)
	p1, p2 := b64(lfwPhoto(t, "Anthony_Hopkins", 1)), b64(lfwPhoto(t, "Aaron_Sorkin", 1))
	first := map[string]any{"workflow_id": "wf", "vendor_data": "carol", "portrait_image": p1, "callback": "https://shop.example/done", "metadata": map[string]any{"order": 1}}
	cr := e.createSession(first)
	for _, tc := range []struct {
		name string
		body map[string]any
		want int
	}{
		{"the same request again", first, http.StatusOK},
		{"no portrait, callback or metadata", map[string]any{"workflow_id": "wf", "vendor_data": "carol"}, http.StatusOK},
		{"another portrait", map[string]any{"workflow_id": "wf", "vendor_data": "carol", "portrait_image": p2}, http.StatusConflict},
		{"another callback", map[string]any{"workflow_id": "wf", "vendor_data": "carol", "callback": "https://evil.example/steal"}, http.StatusConflict},
		{"other metadata", map[string]any{"workflow_id": "wf", "vendor_data": "carol", "metadata": map[string]any{"order": 2}}, http.StatusConflict},
	} {
		code, b := e.api(http.MethodPost, "/v3/session/", e.key, tc.body)
		if code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, code, b, tc.want)
			continue
		}
		if code == http.StatusOK {
			if got := decode[CreateResponse](t, b); got.SessionID != cr.SessionID {
				t.Errorf("%s: session %s, want the open one %s", tc.name, got.SessionID, cr.SessionID)
			}
		}
	}
}

// TestVerdictNotHeldBack: a receiver that keeps failing the "In Progress" event still gets the
// verdict as soon as it exists, and never the stale "In Progress" after it.
func TestVerdictNotHeldBack(t *testing.T) {
	e := newEnv(t, nil)
	e.workflow("wf", FeatureLiveness, FeatureFaceMatch)
	e.rc.mu.Lock()
	e.rc.refuse = store.StatusInProgress
	e.rc.mu.Unlock()
	cr := e.createSession(map[string]any{"workflow_id": "wf", "vendor_data": "u", "portrait_image": b64(lfwPhoto(t, "Aaron_Sorkin", 1))})
	_, _, csrf := e.page(cr.URL) // In Progress
	if _, err := e.svc.DeliverDue(e.ctx); err != nil {
		t.Fatal(err)
	}
	if _, r := e.capture(cr.URL, csrf, lfwPhoto(t, "Aaron_Sorkin", 2)); r.Status != store.StatusApproved {
		t.Fatalf("capture: %+v", r)
	}
	e.deliverAll(20 * time.Second)
	evs := e.rc.events()
	if len(evs) != 1 || evs[0].Status != store.StatusApproved {
		t.Fatalf("received %+v, want the verdict alone", evs)
	}
	ds, _ := e.st.ListDeliveries(e.ctx, store.DeliveryFilter{SessionID: cr.SessionID})
	states := map[string]string{}
	for _, d := range ds {
		states[d.Status] = d.State
	}
	if states[store.StatusInProgress] != store.DeliverySuperseded || states[store.StatusApproved] != store.DeliveryDelivered {
		t.Fatalf("deliveries: %v", states)
	}
}
