// Package templates holds Visage's HTML pages as templ components: login, selfie capture,
// registration, consent, errors and the demo relying party. They render data handed to them and
// know nothing of the layers below. Stable hooks for automation: the username input is
// name="username", the capture button id="capture", the consent allow button value="allow".
package templates
