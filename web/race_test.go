//go:build race

package web_test

// raceEnabled: timing limits are not checked under the race detector,
// which slows everything several times.
const raceEnabled = true
