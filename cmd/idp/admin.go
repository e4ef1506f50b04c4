package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/visage-idp/visage/authn/web"
	"github.com/visage-idp/visage/oidc"
	"github.com/visage-idp/visage/store"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func runMigrate(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	cfgPath := configFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	a, err := openApp(ctx, *cfgPath) // opening applies pending migrations
	if err != nil {
		return err
	}
	defer a.Close()
	fmt.Fprintln(stdout, "migrations applied")
	return nil
}

func runAdmin(ctx context.Context, group, cmd string, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet(group+" "+cmd, flag.ContinueOnError)
	cfgPath := configFlag(fs)
	var (
		id, secret, authMethod, name, alg, jwksFile, jwksURI string
		backchannelURI                                       string
		public, firstParty, claimsInID, emailVerified        bool
		redirects, postLogout, webOrigins, resourceFor       multiFlag
		username, portrait, displayName, email, userIDFlag   string
		limit                                                int
	)
	switch group + " " + cmd {
	case "clients add":
		fs.StringVar(&id, "id", "", "client id (required)")
		fs.StringVar(&secret, "secret", "", "client secret (at least 16 characters; generated and printed once if omitted)")
		fs.Var(&redirects, "redirect-uri", "allowed redirect URI, matched exactly (repeatable, required)")
		fs.Var(&postLogout, "post-logout-redirect-uri", "allowed post-logout redirect URI (repeatable)")
		fs.BoolVar(&public, "public", false, "public client: no secret, PKCE required")
		fs.StringVar(&authMethod, "auth-method", "", "client_secret_basic (default), client_secret_post, private_key_jwt or none")
		fs.BoolVar(&firstParty, "first-party", false, "skip the consent page")
		fs.StringVar(&name, "name", "", "name shown on the consent page")
		fs.StringVar(&alg, "signing-alg", oidc.AlgRS256, "ID token signing algorithm: RS256 or ES256")
		fs.BoolVar(&claimsInID, "claims-in-id-token", false, "put profile and email claims in the ID token too (Auth0)")
		fs.StringVar(&jwksFile, "jwks", "", "JSON Web Key Set file with the client's public keys (private_key_jwt)")
		fs.StringVar(&jwksURI, "jwks-uri", "", "URL where the client publishes its public keys (private_key_jwt), fetched and cached")
		fs.Var(&webOrigins, "web-origin", "browser origin (scheme://host[:port]) allowed to call the token, userinfo, keys, discovery and revocation endpoints with CORS (repeatable)")
		fs.Var(&resourceFor, "resource-server-for", "client id whose access tokens this client may introspect (repeatable)")
		fs.StringVar(&backchannelURI, "backchannel-logout-uri", "", "URL that receives OIDC Back-Channel Logout tokens when a session ends")
	case "clients delete":
		fs.StringVar(&id, "id", "", "client id")
	case "users add":
		fs.StringVar(&username, "username", "", "username (required)")
		fs.StringVar(&portrait, "portrait", "", "JPEG or PNG photo to enrol (required)")
		fs.StringVar(&displayName, "display-name", "", "display name")
		fs.StringVar(&email, "email", "", "email (unique among accounts, case-insensitively)")
		fs.BoolVar(&emailVerified, "email-verified", false, "the operator has verified the email (email_verified=true in tokens)")
	case "users update":
		fs.StringVar(&username, "username", "", "username (required)")
		fs.StringVar(&displayName, "display-name", "", "new display name")
		fs.StringVar(&email, "email", "", "new email (empty clears it); a changed email is unverified unless --email-verified")
		fs.BoolVar(&emailVerified, "email-verified", false, "mark the email verified (or --email-verified=false to unmark)")
	case "users delete":
		fs.StringVar(&username, "username", "", "username")
		fs.StringVar(&userIDFlag, "id", "", "user id")
	case "users unlock":
		fs.StringVar(&username, "username", "", "username (required)")
	case "devices list", "audit list":
		fs.StringVar(&username, "username", "", "username (audit: all users if omitted)")
		fs.IntVar(&limit, "limit", 100, "most recent events to show")
	case "devices revoke":
		fs.StringVar(&username, "username", "", "username")
		fs.StringVar(&id, "id", "", "device id")
	case "clients list", "users list", "keys rotate", "keys list":
	default:
		return fmt.Errorf("unknown command %q", group+" "+cmd)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	a, err := openApp(ctx, *cfgPath)
	if err != nil {
		return err
	}
	defer a.Close()
	now := time.Now().UTC()
	st := a.store
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	defer tw.Flush()

	switch group + " " + cmd {
	case "clients add":
		if id == "" || len(redirects) == 0 {
			return errors.New("clients add: --id and at least one --redirect-uri are required")
		}
		for _, u := range redirects {
			if err := checkRedirectURI(u, public); err != nil {
				return fmt.Errorf("clients add: --redirect-uri %q: %w", u, err)
			}
		}
		for _, u := range postLogout {
			if err := checkRedirectURI(u, public); err != nil {
				return fmt.Errorf("clients add: --post-logout-redirect-uri %q: %w", u, err)
			}
		}
		c := store.Client{ID: id, Name: name, RedirectURIs: redirects, PostLogoutRedirectURIs: postLogout, Public: public,
			AuthMethod: authMethod, FirstParty: firstParty, IDTokenSigningAlg: alg, ClaimsInIDToken: claimsInID, CreatedAt: now}
		if alg != oidc.AlgRS256 && alg != oidc.AlgES256 {
			return fmt.Errorf("clients add: --signing-alg %q: want RS256 or ES256", alg)
		}
		if backchannelURI != "" {
			u, err := url.Parse(backchannelURI)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Fragment != "" {
				return fmt.Errorf("clients add: --backchannel-logout-uri %q: want an absolute http(s) URL without a fragment", backchannelURI)
			}
			c.BackchannelLogoutURI = backchannelURI
		}
		if public {
			if secret != "" {
				return errors.New("clients add: a --public client has no --secret")
			}
			if authMethod != "" && authMethod != "none" {
				return errors.New("clients add: a --public client uses --auth-method none")
			}
			c.AuthMethod = "none"
		} else {
			switch authMethod {
			case "":
				c.AuthMethod = "client_secret_basic"
			case "client_secret_basic", "client_secret_post", "private_key_jwt":
			case "none":
				return errors.New("clients add: --auth-method none needs --public")
			default:
				return fmt.Errorf("clients add: unknown --auth-method %q", authMethod)
			}
		}
		if jwksFile != "" {
			b, err := os.ReadFile(jwksFile)
			if err != nil {
				return fmt.Errorf("clients add: %w", err)
			}
			c.JWKS = b
		}
		if jwksURI != "" {
			if jwksFile != "" {
				return errors.New("clients add: give --jwks or --jwks-uri, not both")
			}
			if err := checkJWKSURI(jwksURI, a.cfg.Issuer); err != nil {
				return fmt.Errorf("clients add: --jwks-uri: %w", err)
			}
			c.JWKSURI = jwksURI
		}
		if c.AuthMethod == "private_key_jwt" && len(c.JWKS) == 0 && c.JWKSURI == "" {
			return errors.New("clients add: private_key_jwt needs --jwks FILE or --jwks-uri URL")
		}
		for _, o := range webOrigins {
			if err := checkOrigin(o); err != nil {
				return fmt.Errorf("clients add: --web-origin %q: %w", o, err)
			}
		}
		c.WebOrigins, c.ResourceServerFor = webOrigins, resourceFor
		if public && len(resourceFor) > 0 {
			return errors.New("clients add: a --public client cannot introspect (--resource-server-for needs a confidential client)")
		}
		printSecret := false
		if !public && c.AuthMethod != "private_key_jwt" {
			if secret == "" {
				secret, printSecret = oidc.GenerateSecret(), true
			} else if len(secret) < 16 {
				return errors.New("clients add: --secret must have at least 16 characters")
			}
			c.SecretHash = oidc.HashSecret(secret)
		}
		if err := st.CreateClient(ctx, c); err != nil {
			return fmt.Errorf("clients add: %w", err)
		}
		fmt.Fprintf(stdout, "client %s added (%s)\n", id, c.AuthMethod)
		if printSecret {
			fmt.Fprintf(stdout, "secret: %s\n(shown once; only its hash is stored)\n", secret)
		}
	case "clients list":
		cs, err := st.ListClients(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintln(tw, "ID\tNAME\tAUTH\tFIRST-PARTY\tALG\tREDIRECT URIS\tWEB ORIGINS\tRESOURCE SERVER FOR")
		for _, c := range cs {
			name := c.Name
			if name == "" {
				name = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\t%s\t%s\t%s\n", c.ID, name, c.AuthMethod, c.FirstParty, c.IDTokenSigningAlg, strings.Join(c.RedirectURIs, " "),
				strings.Join(c.WebOrigins, " "), strings.Join(c.ResourceServerFor, " "))
		}
	case "clients delete":
		if err := st.DeleteClient(ctx, id); err != nil {
			return fmt.Errorf("clients delete: %w", err)
		}
		fmt.Fprintf(stdout, "client %s deleted\n", id)
	case "users add":
		if username == "" || portrait == "" {
			return errors.New("users add: --username and --portrait are required")
		}
		img, err := os.ReadFile(portrait)
		if err != nil {
			return fmt.Errorf("users add: %w", err)
		}
		keys, err := a.keyRing()
		if err != nil {
			return err
		}
		engine, err := a.engine()
		if err != nil {
			return err
		}
		defer engine.Close()
		u, err := web.Enrol(ctx, st, engine, keys, web.Account{Username: username, DisplayName: displayName, Email: email, EmailVerified: emailVerified},
			[][]byte{img}, a.cfg.KeepImages, time.Now)
		if errors.Is(err, store.ErrEmailTaken) {
			return fmt.Errorf("users add: the email %q belongs to another account", email)
		} else if err != nil {
			return fmt.Errorf("users add: %w", err)
		}
		fmt.Fprintf(stdout, "user %s enrolled (id %s)\n", u.Username, u.ID)
	case "users update":
		if username == "" {
			return errors.New("users update: --username is required")
		}
		u, err := st.GetUserByUsername(ctx, strings.ToLower(username))
		if err != nil {
			return fmt.Errorf("users update: %w", err)
		}
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if set["display-name"] {
			u.DisplayName = displayName
		}
		if set["email"] && email != u.Email {
			u.Email, u.EmailVerified = email, false
		}
		if set["email-verified"] {
			u.EmailVerified = emailVerified
		}
		acct := web.Account{Username: u.Username, DisplayName: u.DisplayName, Email: u.Email, EmailVerified: u.EmailVerified}
		if err := acct.Validate(); err != nil {
			return fmt.Errorf("users update: %w", err)
		}
		u.DisplayName, u.UpdatedAt = acct.DisplayName, now
		if err := st.UpdateUser(ctx, u); errors.Is(err, store.ErrEmailTaken) {
			return fmt.Errorf("users update: the email %q belongs to another account", u.Email)
		} else if err != nil {
			return fmt.Errorf("users update: %w", err)
		}
		fmt.Fprintf(stdout, "user %s updated (email %q, verified %v)\n", u.Username, u.Email, u.EmailVerified)
	case "users list":
		us, err := st.ListUsers(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintln(tw, "ID\tUSERNAME\tNAME\tEMAIL\tCREATED")
		for _, u := range us {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.ID, u.Username, u.DisplayName, u.Email, u.CreatedAt.Format(time.RFC3339))
		}
	case "users delete":
		if userIDFlag == "" {
			u, err := st.GetUserByUsername(ctx, strings.ToLower(username))
			if err != nil {
				return fmt.Errorf("users delete: %w", err)
			}
			userIDFlag = u.ID
		}
		if err := st.DeleteUser(ctx, userIDFlag); err != nil {
			return fmt.Errorf("users delete: %w", err)
		}
		fmt.Fprintf(stdout, "user %s deleted with its face template, sessions and tokens\n", userIDFlag)
	case "users unlock":
		u, err := st.GetUserByUsername(ctx, strings.ToLower(username))
		if err != nil {
			return fmt.Errorf("users unlock: user %q: %w", username, err)
		}
		n, err := st.ClearFailures(ctx, u.ID)
		if err != nil {
			return fmt.Errorf("users unlock: %w", err)
		}
		if err := st.AppendAudit(ctx, store.AuditEvent{At: now, UserID: u.ID, Method: "ADMIN", Outcome: "unlocked",
			Reason: fmt.Sprintf("%d failed attempts cleared by an administrator", n)}); err != nil {
			return fmt.Errorf("users unlock: audit: %w", err)
		}
		fmt.Fprintf(stdout, "user %s unlocked: %d failed attempts cleared\n", u.Username, n)
	case "devices list", "devices revoke":
		u, err := st.GetUserByUsername(ctx, strings.ToLower(username))
		if err != nil {
			return fmt.Errorf("%s %s: user %q: %w", group, cmd, username, err)
		}
		if cmd == "revoke" {
			if err := st.RevokeDevice(ctx, id, u.ID, now); err != nil {
				return fmt.Errorf("devices revoke: %w", err)
			}
			fmt.Fprintf(stdout, "device %s of %s revoked: its next sign-in needs a selfie\n", id, u.Username)
			return nil
		}
		ds, err := st.ListDevices(ctx, u.ID)
		if err != nil {
			return err
		}
		fmt.Fprintln(tw, "ID\tFIRST SEEN\tLAST SEEN\tSTATE\tUSER AGENT")
		for _, d := range ds {
			state := "trusted"
			if d.RevokedAt != nil {
				state = "revoked"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.ID, d.FirstSeen.Format(time.RFC3339), d.LastSeen.Format(time.RFC3339), state, d.UserAgent)
		}
	case "audit list":
		userID := ""
		if username != "" {
			u, err := st.GetUserByUsername(ctx, strings.ToLower(username))
			if err != nil {
				return fmt.Errorf("audit: user %q: %w", username, err)
			}
			userID = u.ID
		}
		evs, err := st.ListAudit(ctx, userID, limit)
		if err != nil {
			return err
		}
		fmt.Fprintln(tw, "TIME\tUSER\tCLIENT\tIP\tDEVICE KNOWN\tIP KNOWN\tTOR\tVPN\tMETHOD\tOUTCOME\tREASON")
		for _, e := range evs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%v\t%v\t%v\t%s\t%s\t%s\n", e.At.Format(time.RFC3339), e.UserID, e.ClientID, e.IP,
				e.DeviceKnown, e.IPKnown, e.Tor, e.VPN, e.Method, e.Outcome, e.Reason)
		}
	case "keys rotate":
		maxLife := a.cfg.IDTokenTTL + time.Minute
		ids, err := oidc.RotateKeys(ctx, st, now, maxLife)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "new signing keys %s; old keys stay published until %s\n", strings.Join(ids, ", "), now.Add(maxLife).Format(time.RFC3339))
	case "keys list":
		ks, err := st.ListSigningKeys(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintln(tw, "ID\tALG\tCREATED\tSTATE")
		for _, k := range ks {
			state := "active"
			if k.RetiredAt != nil {
				state = "retired, published until " + k.PublishUntil.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.ID, k.Algorithm, k.CreatedAt.Format(time.RFC3339), state)
		}
	}
	return nil
}

// checkRedirectURI accepts a redirect URI as the provider will compare it, exactly: an
// absolute http(s) URL with a host and no fragment (RFC 6749 section 3.1.2). A public (native)
// client may also register a private-use scheme in reverse-domain form, such as
// com.example.app:/callback (RFC 8252 section 7.1).
func checkRedirectURI(raw string, public bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a URL: want an absolute http(s) URL such as https://app.example/callback")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return errors.New("a redirect URI has no fragment (#...)")
	}
	switch {
	case u.Scheme == "https" || u.Scheme == "http":
		if u.Host == "" || u.Hostname() == "" {
			return errors.New("want an absolute http(s) URL with a host, such as https://app.example/callback")
		}
		if u.User != nil {
			return errors.New("a redirect URI has no user name or password")
		}
		return nil
	case public && strings.Contains(u.Scheme, ".") && u.Host == "" && (u.Opaque != "" || u.Path != ""):
		return nil // a native app's private-use scheme
	}
	return errors.New("want an absolute http(s) URL such as https://app.example/callback (a --public native app may use a reverse-domain scheme such as com.example.app:/callback)")
}

// checkOrigin accepts a browser origin: scheme://host[:port], nothing else.
func checkOrigin(o string) error {
	u, err := url.Parse(o)
	if err != nil {
		return err
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return errors.New("want scheme://host[:port] with no path")
	}
	return nil
}

// checkJWKSURI accepts an absolute https URL (http only while the issuer itself is http, for
// development).
func checkJWKSURI(raw, issuer string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && strings.HasPrefix(issuer, "http://"))) {
		return errors.New("want an absolute https URL")
	}
	return nil
}
