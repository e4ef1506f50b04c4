package words

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	// codeLike is a token such as FACE_TOO_DARK or NO_IMAGE: a code, not a word.
	codeLike = regexp.MustCompile(`\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b|\b[A-Z]{4,}\b`)
	// aWait is the one place a number may appear: how long to wait.
	aWait = regexp.MustCompile(`\b\d+ (seconds|minutes)\b`)
	// allowedNumbers are the username rule's bounds, said as words a person reads.
	allowedNumbers = regexp.MustCompile(`\b3 to 64 letters\b`)
	digit          = regexp.MustCompile(`\d`)
)

// plain fails the test if msg is not a plain sentence: no code, no measurement, no number but
// a wait, and it ends with a full stop.
func plain(t *testing.T, what, msg string) {
	t.Helper()
	if msg == "" {
		t.Errorf("%s: empty message", what)
		return
	}
	if m := codeLike.FindString(msg); m != "" {
		t.Errorf("%s: %q contains the code-like token %q", what, msg, m)
	}
	rest := allowedNumbers.ReplaceAllString(aWait.ReplaceAllString(msg, ""), "")
	if digit.MatchString(rest) {
		t.Errorf("%s: %q contains a number or measurement", what, msg)
	}
	for _, bad := range []string{"(", ")", " of 255", "minimum", "threshold", " score", "m0s"} {
		if strings.Contains(msg, bad) {
			t.Errorf("%s: %q contains %q", what, msg, bad)
		}
	}
	if !strings.HasSuffix(msg, ".") {
		t.Errorf("%s: %q is not a sentence", what, msg)
	}
}

// sourceCodes returns the code constants (names starting with Code, string values) declared in
// the Go files of dir, and the string codes written into Code fields there ("Code: \"X\"",
// "d.Code = \"X\"").
func sourceCodes(t *testing.T, pattern string) map[string]string {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		t.Fatalf("no files for %s: %v", pattern, err)
	}
	out := map[string]string{}
	fset := token.NewFileSet()
	lit := func(e ast.Expr) (string, bool) {
		b, ok := e.(*ast.BasicLit)
		if !ok || b.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(b.Value)
		return s, err == nil && s != ""
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.ValueSpec:
				for i, name := range n.Names {
					if strings.HasPrefix(name.Name, "Code") && i < len(n.Values) {
						if s, ok := lit(n.Values[i]); ok {
							out[s] = fset.Position(name.Pos()).String()
						}
					}
				}
			case *ast.KeyValueExpr:
				if k, ok := n.Key.(*ast.Ident); ok && k.Name == "Code" {
					if s, ok := lit(n.Value); ok {
						out[s] = fset.Position(n.Pos()).String()
					}
				}
			case *ast.AssignStmt:
				for i, l := range n.Lhs {
					if sel, ok := l.(*ast.SelectorExpr); ok && sel.Sel.Name == "Code" && i < len(n.Rhs) {
						if s, ok := lit(n.Rhs[i]); ok {
							out[s] = fset.Position(n.Pos()).String()
						}
					}
				}
			}
			return true
		})
	}
	return out
}

// TestEveryCodeHasAPlainSentence walks every code constant of the face engine, liveness and
// the Sessions API, and every code the sign-in pages and the verifier write, and checks that
// each has a plain sentence in the catalogue.
func TestEveryCodeHasAPlainSentence(t *testing.T) {
	dirs := map[string]int{ // how many codes each place must at least yield, so the walk cannot silently find nothing
		"../face/*.go":     20,
		"../liveness/*.go": 20,
		"../sessions/*.go": 4,
		"../web/*.go":      10,
		"../verifier.go":   3,
	}
	seen := map[string]bool{}
	for pattern, least := range dirs {
		codes := sourceCodes(t, pattern)
		if len(codes) < least {
			t.Errorf("%s: found %d codes, want at least %d", pattern, len(codes), least)
		}
		for code, where := range codes {
			seen[code] = true
			if !Known(code) {
				t.Errorf("%s: code %s (%s) has no sentence in the catalogue", pattern, code, where)
			}
		}
	}
	for _, code := range Codes() {
		plain(t, code, For(code))
	}
	plain(t, "fallback", For("NOT_A_CODE"))
	if For("NOT_A_CODE") != Fallback {
		t.Error("an unknown code does not get the fallback")
	}
	for _, want := range []string{"FACE_TOO_DARK", "LIVENESS_FACE_ATTACK", "MOVEMENT_NOT_COMPLETED", "DUPLICATE_FRAMES", "FACE_CUT_OFF"} {
		if !seen[want] {
			t.Errorf("the walk did not find %s", want)
		}
	}
}

func TestNextSteps(t *testing.T) {
	for code, want := range map[string]string{
		"FACE_TOO_DARK":    "Find more light",
		"FACE_CUT_OFF":     "Move your whole face into the oval",
		"NO_FACE_DETECTED": "Move your whole face into the oval",
	} {
		if !strings.Contains(For(code), want) {
			t.Errorf("%s: %q does not say %q", code, For(code), want)
		}
	}
}

func TestLockout(t *testing.T) {
	cases := []struct {
		who  Who
		wait time.Duration
		want string
	}{
		{Account, 150 * time.Second, "Try again in 3 minutes."},
		{Account, 15 * time.Minute, "Try again in 15 minutes."},
		{Network, time.Minute, "Try again in a minute."},
		{Address, 20 * time.Second, "Try again in 20 seconds."},
		{NetworkRequests, 500 * time.Millisecond, "Try again in a second."},
	}
	for _, c := range cases {
		got := Lockout(c.who, c.wait)
		if !strings.HasSuffix(got, c.want) {
			t.Errorf("Lockout(%d, %v) = %q, want ending %q", c.who, c.wait, got, c.want)
		}
		plain(t, "lockout", got)
	}
}
