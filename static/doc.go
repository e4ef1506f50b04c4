// Package static embeds the browser assets: the camera capture script and the stylesheet.
package static

import "embed"

// Files holds capture.js and style.css, served under /static/.
//
//go:embed *.js *.css
var Files embed.FS
