//go:build race

package challenge_test

const raceEnabled = true
