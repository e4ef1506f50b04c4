package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/visage-idp/visage/authn/face"
	"github.com/visage-idp/visage/authn/sessions"
	"github.com/visage-idp/visage/store"
	"github.com/visage-idp/visage/templates"
)

func urlEscape(s string) string { return url.QueryEscape(s) }

// tabs are the status filters, In Review first: that is the console's work queue.
var tabs = []string{store.StatusInReview, "", store.StatusApproved, store.StatusDeclined, store.StatusResubmitted, store.StatusInProgress,
	store.StatusNotStarted, store.StatusNotFinished, store.StatusExpired, store.StatusAbandoned, store.StatusKycExpired}

const pageSize = 50

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") }

// list shows the sessions with one status (In Review by default; "all" for every status).
func (c *Console) list(w http.ResponseWriter, r *http.Request, who signIn) {
	ctx := r.Context()
	q := r.URL.Query()
	status := q.Get("status")
	if !q.Has("status") {
		status = store.StatusInReview
	}
	if status == "all" {
		status = ""
	}
	offset, _ := strconv.Atoi(q.Get("offset"))
	offset = max(offset, 0)
	vs, total, err := c.st.ListVerifications(ctx, store.VerificationFilter{Status: status, Limit: pageSize, Offset: offset})
	if err != nil {
		c.fail(w, r, http.StatusInternalServerError, "Error", "The sessions could not be listed.", err)
		return
	}
	apps := c.appNames(r)
	d := templates.ConsoleListData{Admin: who.Username, CSRF: who.CSRF, Total: total}
	link := func(st string, off int) string {
		v := url.Values{}
		if st == "" {
			st = "all"
		}
		v.Set("status", st)
		if off > 0 {
			v.Set("offset", strconv.Itoa(off))
		}
		return "/console?" + v.Encode()
	}
	for _, t := range tabs {
		name := t
		if t == "" {
			name = "All"
		}
		d.Tabs = append(d.Tabs, templates.ConsoleTab{Name: name, URL: link(t, 0), Active: t == status})
	}
	for _, v := range vs {
		d.Rows = append(d.Rows, row(v, apps[v.AppID]))
	}
	if offset > 0 {
		d.Prev = link(status, max(offset-pageSize, 0))
	}
	if offset+pageSize < total {
		d.Next = link(status, offset+pageSize)
	}
	c.render(w, r, http.StatusOK, templates.ConsoleListPage(d))
}

func (c *Console) appNames(r *http.Request) map[string]string {
	out := map[string]string{}
	apps, err := c.st.ListApplications(r.Context())
	if err != nil {
		c.log.WarnContext(r.Context(), "console: applications", "err", err)
		return out
	}
	for _, a := range apps {
		out[a.ID] = a.Name + " (" + a.ID + ")"
	}
	return out
}

// row formats a session's signals for the list.
func row(v store.Verification, app string) templates.ConsoleRow {
	if app == "" {
		app = v.AppID
	}
	r := templates.ConsoleRow{ID: v.ID, URL: "/console/sessions/" + url.PathEscape(v.ID), Number: strconv.FormatInt(v.Number, 10),
		Created: stamp(v.CreatedAt), App: app, Workflow: v.WorkflowID, VendorData: v.VendorData, Status: v.Status}
	var res sessions.Results
	if v.Results != nil && json.Unmarshal(v.Results, &res) == nil {
		var codes []string
		for _, l := range res.LivenessChecks {
			r.Liveness = fmt.Sprintf("%s %v %s", l.Method, l.Score, l.Status)
			for _, w := range l.Warnings {
				codes = append(codes, w.Risk)
			}
		}
		for _, f := range res.FaceMatches {
			r.FaceMatch = fmt.Sprintf("%v %s", f.Score, f.Status)
			for _, w := range f.Warnings {
				codes = append(codes, w.Risk)
			}
		}
		for _, ip := range res.IPAnalyses {
			r.IP = ip.IPAddress
			if ip.IsVPNOrTor {
				r.IP += " (VPN/Tor)"
			}
			for _, w := range ip.Warnings {
				codes = append(codes, w.Risk)
			}
		}
		r.Warnings = strings.Join(codes, ", ")
	}
	return r
}

// session shows one session.
func (c *Console) session(w http.ResponseWriter, r *http.Request, who signIn) {
	c.showSession(w, r, who, "", http.StatusOK)
}

func (c *Console) showSession(w http.ResponseWriter, r *http.Request, who signIn, message string, status int) {
	ctx := r.Context()
	v, err := c.st.GetVerification(ctx, r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		c.render(w, r, http.StatusNotFound, templates.ErrorPage("Not found", "No such session (it may have been deleted or purged)."))
		return
	} else if err != nil {
		c.fail(w, r, http.StatusInternalServerError, "Error", "The session could not be read.", err)
		return
	}
	dec, err := c.svc.Decision(ctx, v)
	if err != nil {
		c.fail(w, r, http.StatusInternalServerError, "Error", "The session could not be read.", err)
		return
	}
	app, err := c.st.GetApplication(ctx, v.AppID)
	if err != nil {
		c.fail(w, r, http.StatusInternalServerError, "Error", "The session's application could not be read.", err)
		return
	}
	d := templates.ConsoleSessionData{Admin: who.Username, CSRF: who.CSRF, Row: row(v, app.Name+" ("+app.ID+")"), Metadata: string(v.Metadata),
		Callback: v.Callback, Expires: stamp(v.ExpiresAt), KeepImages: app.KeepImages, CanDecide: v.Status == store.StatusInReview,
		DecideURL: "/console/sessions/" + url.PathEscape(v.ID) + "/decide", DeleteURL: "/console/sessions/" + url.PathEscape(v.ID) + "/delete",
		Message: message}
	warns := func(ws []sessions.Warning) []string {
		var out []string
		for _, w := range ws {
			out = append(out, w.Risk+": "+w.ShortDescription)
		}
		return out
	}
	for _, l := range dec.LivenessChecks {
		d.Checks = append(d.Checks, templates.ConsoleCheck{Feature: "Liveness", Status: l.Status, Detail: fmt.Sprintf("%s, score %v", l.Method, l.Score), Warnings: warns(l.Warnings)})
	}
	for _, f := range dec.FaceMatches {
		d.Checks = append(d.Checks, templates.ConsoleCheck{Feature: "Face match", Status: f.Status, Detail: fmt.Sprintf("score %v against the %s face", f.Score, f.ReferenceSource), Warnings: warns(f.Warnings)})
	}
	for _, ip := range dec.IPAnalyses {
		d.Checks = append(d.Checks, templates.ConsoleCheck{Feature: "IP analysis", Status: ip.Status,
			Detail: fmt.Sprintf("%s, VPN or Tor: %v, %s on %s (%s)", ip.IPAddress, ip.IsVPNOrTor, ip.BrowserFamily, ip.OSFamily, ip.DeviceType), Warnings: warns(ip.Warnings)})
	}
	for _, rv := range dec.Reviews {
		d.Reviews = append(d.Reviews, templates.ConsoleReview{At: rv.CreatedAt, User: rv.User, Status: rv.NewStatus, Comment: rv.Comment})
	}
	ds, err := c.st.ListDeliveries(ctx, store.DeliveryFilter{SessionID: v.ID})
	if err != nil {
		c.fail(w, r, http.StatusInternalServerError, "Error", "The webhooks could not be read.", err)
		return
	}
	for _, dl := range ds {
		cd := templates.ConsoleDelivery{EventID: dl.ID, Status: dl.Status, State: dl.State, LastError: dl.LastError}
		if dl.State == store.DeliveryPending {
			cd.Next = stamp(dl.NextAttemptAt)
		}
		attempts, err := c.st.ListDeliveryAttempts(ctx, dl.ID)
		if err != nil {
			c.fail(w, r, http.StatusInternalServerError, "Error", "The webhook attempts could not be read.", err)
			return
		}
		for _, a := range attempts {
			code := strconv.Itoa(a.StatusCode)
			if a.StatusCode == 0 {
				code = "no response"
			}
			cd.Attempts = append(cd.Attempts, templates.ConsoleAttempt{N: strconv.Itoa(a.N), At: stamp(a.At), Code: code, Error: a.Error,
				Duration: a.Duration.Round(time.Millisecond).String()})
		}
		d.Deliveries = append(d.Deliveries, cd)
	}
	imgs, err := c.st.ListVerificationImages(ctx, v.ID)
	if err != nil {
		c.fail(w, r, http.StatusInternalServerError, "Error", "The frames could not be read.", err)
		return
	}
	for _, img := range imgs {
		d.Images = append(d.Images, fmt.Sprintf("/console/sessions/%s/images/%d", url.PathEscape(v.ID), img.N))
	}
	c.render(w, r, status, templates.ConsoleSessionPage(d))
}

// image serves a kept frame, decrypted, never cached.
func (c *Console) image(w http.ResponseWriter, r *http.Request, who signIn) {
	ctx := r.Context()
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	imgs, err := c.st.ListVerificationImages(ctx, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, http.StatusInternalServerError, "Error", "The frame could not be read.", err)
		return
	}
	for _, img := range imgs {
		if img.N != n {
			continue
		}
		t, err := c.keys.Open(img.Sealed)
		if err != nil {
			c.fail(w, r, http.StatusInternalServerError, "Error", "The frame could not be decrypted.", err)
			return
		}
		ct := "image/jpeg"
		if f, err := face.Sniff(t.Image); err == nil && f == face.FormatPNG {
			ct = "image/png"
		}
		c.log.InfoContext(ctx, "console frame viewed", "session", img.SessionID, "n", n, "user", who.UserID)
		w.Header().Set("Content-Type", ct)
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(t.Image)
		return
	}
	http.NotFound(w, r)
}

// decide approves or declines a session in review, with a comment; the webhook fires.
func (c *Console) decide(w http.ResponseWriter, r *http.Request, who signIn) {
	ctx := r.Context()
	v, err := c.st.GetVerification(ctx, r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		c.render(w, r, http.StatusNotFound, templates.ErrorPage("Not found", "No such session."))
		return
	} else if err != nil {
		c.fail(w, r, http.StatusInternalServerError, "Error", "The session could not be read.", err)
		return
	}
	status, comment := r.PostFormValue("new_status"), strings.TrimSpace(r.PostFormValue("comment"))
	switch {
	case v.Status != store.StatusInReview:
		c.showSession(w, r, who, "Only sessions In Review are decided here; this one is "+v.Status+".", http.StatusConflict)
		return
	case status != store.StatusApproved && status != store.StatusDeclined:
		c.showSession(w, r, who, "Choose Approve or Decline.", http.StatusBadRequest)
		return
	case comment == "" || len(comment) > 2000:
		c.showSession(w, r, who, "Write a comment (at most 2000 characters): it goes to the application with the decision.", http.StatusBadRequest)
		return
	}
	if _, err := c.svc.SetStatus(ctx, v, status, comment, who.Username); err != nil {
		if errors.Is(err, store.ErrStatusChanged) {
			c.showSession(w, r, who, "Someone else decided this session meanwhile.", http.StatusConflict)
			return
		}
		c.fail(w, r, http.StatusInternalServerError, "Error", "The decision could not be saved.", err)
		return
	}
	http.Redirect(w, r, "/console/sessions/"+url.PathEscape(v.ID), http.StatusSeeOther)
}

// remove deletes a session for real (the confirm box must be ticked), as the API's delete
// does, and goes back to the list.
func (c *Console) remove(w http.ResponseWriter, r *http.Request, who signIn) {
	ctx := r.Context()
	v, err := c.st.GetVerification(ctx, r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		c.render(w, r, http.StatusNotFound, templates.ErrorPage("Not found", "No such session (it may have been deleted already)."))
		return
	} else if err != nil {
		c.fail(w, r, http.StatusInternalServerError, "Error", "The session could not be read.", err)
		return
	}
	if r.PostFormValue("confirm") != "yes" {
		c.showSession(w, r, who, "Tick the box to confirm the deletion.", http.StatusBadRequest)
		return
	}
	if err := c.svc.Delete(ctx, v.AppID, v.ID); err != nil {
		if errors.Is(err, sessions.ErrNotFound) {
			c.render(w, r, http.StatusNotFound, templates.ErrorPage("Not found", "No such session (it may have been deleted already)."))
			return
		}
		c.fail(w, r, http.StatusInternalServerError, "Error", "The session could not be deleted.", err)
		return
	}
	c.log.InfoContext(ctx, "console session deleted", "session", v.ID, "app", v.AppID, "user", who.UserID)
	http.Redirect(w, r, "/console?status=all", http.StatusSeeOther)
}
