// Package console holds the operator's console pages (calls history, a
// call's detail) as static files embedded with go:embed. webui serves them
// under /console/ with a CSP that allows no inline script, next to the JSON
// and CSV they read.
package console

import "embed"

// Assets are the pages, scripts and style sheet, under "assets/".
//
//go:embed assets
var Assets embed.FS
