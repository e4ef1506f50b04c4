// Command idp is Visage's one binary: it serves the OpenID Provider (serve), applies database
// migrations (migrate), administers clients, users and signing keys on the same data directory
// (also while serve runs), and evaluates and benchmarks the face engine (eval, bench).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

const usage = `usage: idp <command> [flags]

commands:
  serve     [--config FILE]                 serve the OpenID Provider
  migrate   [--config FILE]                 apply database migrations and exit
  clients   add|list|delete                 manage OAuth clients
  users     add|update|list|delete|unlock   manage users (add enrols from a portrait; unlock clears failed attempts)
  users     promote|demote --username U     give or take the admin role (review console)
  keys      rotate|list                     manage token-signing keys
  apikeys   create|list|revoke|update       Sessions API keys and their applications (webhooks)
  workflows create|list                     Sessions API workflows (LIVENESS, FACE_MATCH, IP_ANALYSIS)
  devices   list|revoke --username U        a user's trusted devices (revoke: next sign-in needs a selfie)
  audit     list [--username U]             step-up decisions with their inputs
  eval      faces --images DIR [--pairs F]  face-match accuracy (EER, TAR at FAR)
  eval      liveness --bonafide D --attack D  presentation-attack detection (APCER, BPCER, EER)
  bench     faces [--workers N]             face pipeline latency and throughput

Every command reads the configuration file given by --config (or VISAGE_CONFIG) and the
VISAGE_* environment variables; see README.md.`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "idp:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return fmt.Errorf("no command")
	}
	cmd, rest := args[0], args[1:]
	sub := func() (string, []string, error) {
		if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
			return "", nil, fmt.Errorf("%s: missing subcommand", cmd)
		}
		return rest[0], rest[1:], nil
	}
	switch cmd {
	case "serve":
		return runServe(ctx, rest, stdout, stderr)
	case "migrate":
		return runMigrate(ctx, rest, stdout)
	case "apikeys", "workflows":
		return withApp(ctx, rest, func(a *app, args []string) error {
			if cmd == "apikeys" {
				return runAPIKeys(ctx, a, args, stdout)
			}
			return runWorkflows(ctx, a, args, stdout)
		})
	case "clients", "users", "keys", "devices", "audit":
		name, more, err := sub()
		if err != nil {
			return err
		}
		if cmd == "users" && (name == "promote" || name == "demote") {
			return withApp(ctx, more, func(a *app, args []string) error {
				return runUserRole(ctx, a, args, stdout, name == "promote")
			})
		}
		return runAdmin(ctx, cmd, name, more, stdout)
	case "eval", "bench":
		name, more, err := sub()
		if err != nil {
			return err
		}
		switch {
		case cmd == "eval" && name == "faces":
			return runEvalFaces(ctx, more, stdout)
		case cmd == "eval" && name == "liveness":
			return runEvalLiveness(ctx, more, stdout)
		case cmd == "bench" && name == "faces":
			return runBenchFaces(ctx, more, stdout)
		}
		return fmt.Errorf("%s: unknown target %q (eval: faces or liveness; bench: faces)", cmd, name)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	fmt.Fprintln(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

// withApp takes --config FILE (or --config=FILE) out of args, opens the app and runs fn with the
// remaining arguments.
func withApp(ctx context.Context, args []string, fn func(a *app, args []string) error) error {
	path := os.Getenv("VISAGE_CONFIG")
	var rest []string
	for i := 0; i < len(args); i++ {
		switch {
		case args[i] == "--config" || args[i] == "-config":
			if i+1 >= len(args) {
				return fmt.Errorf("--config needs a file")
			}
			path = args[i+1]
			i++
		case strings.HasPrefix(args[i], "--config="), strings.HasPrefix(args[i], "-config="):
			path = args[i][strings.Index(args[i], "=")+1:]
		default:
			rest = append(rest, args[i])
		}
	}
	a, err := openApp(ctx, path)
	if err != nil {
		return err
	}
	defer a.Close()
	return fn(a, rest)
}
