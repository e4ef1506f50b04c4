// Package static embeds the browser assets: the capture scripts, the stylesheets and the favicon.
package static

import "embed"

// Files holds the scripts, the stylesheets and the favicon, served under /static/.
//
//go:embed *.js *.css *.svg
var Files embed.FS
